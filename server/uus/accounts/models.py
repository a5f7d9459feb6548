from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from uus.core.models import TimeStampedModel

from .choices import ROLE_RANK, Role


class User(AbstractUser):
    """A person. `role` decides what they may do; directory users get theirs from group mapping."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AUDITOR)
    source = models.CharField(max_length=64, default="local", help_text="local, or the directory it came from")

    def has_role(self, needed: str) -> bool:
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[needed]


class ApiToken(TimeStampedModel):
    """A personal API token. Only a SHA-256 of the key is kept; the key is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)
    is_revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class LoginAttempt(models.Model):
    """Failed logins, kept in the database so every web process sees the same count."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.GenericIPAddressField(null=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
