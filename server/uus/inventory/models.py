from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from uus.core.models import TimeStampedModel


class EnrollmentToken(TimeStampedModel):
    """Lets machines register. Only a SHA-256 of the key is stored; the key is printed once."""

    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    comment = models.CharField(max_length=200, blank=True, default="")
    group = models.CharField(max_length=200, blank=True, default="", help_text="group new machines join")
    expires = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    is_revoked = models.BooleanField(default=False)
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created"]

    @property
    def is_usable(self) -> bool:
        if self.is_revoked:
            return False
        if self.expires and self.expires <= timezone.now():
            return False
        return not (self.max_uses is not None and self.uses >= self.max_uses)
