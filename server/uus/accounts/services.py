"""Writes for people and their tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.db import transaction
from django.utils import timezone

from uus.core.exceptions import Conflict, UusError

from .choices import Role
from .exceptions import LoginThrottled
from .models import ApiToken, LoginAttempt, User

TOKEN_PREFIX = "uus_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def user_create(*, username: str, password: str, role: str = Role.AUDITOR, email: str = "") -> User:
    if role not in Role.values:
        raise UusError(f"unknown role '{role}': use one of {', '.join(Role.values)}", code="invalid_role")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"user '{username}' already exists")
    user = User(username=username, email=email, role=role, is_staff=role == Role.ADMIN)
    try:
        password_validation.validate_password(password, user)
    except Exception as exc:  # ValidationError carries a list of messages
        raise UusError(
            "password refused: " + " ".join(getattr(exc, "messages", [str(exc)])), code="weak_password"
        ) from exc
    user.set_password(password)
    user.save()
    return user


def admin_bootstrap() -> tuple[User, str] | None:
    """Create the first administrator when none exists; returns (user, generated password) once."""
    if User.objects.filter(role=Role.ADMIN, is_active=True).exists():
        return None
    password = secrets.token_urlsafe(15)
    username = "admin"
    if User.objects.filter(username=username).exists():
        username = f"admin-{secrets.token_hex(3)}"
    return user_create(username=username, password=password, role=Role.ADMIN), password


def api_token_create(*, user: User, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(days=days) if days else None
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:12], key_hash=_hash(key), expires=expires)
    return token, key


def api_token_check(key: str) -> User | None:
    """The user a token key belongs to, or None; touches last_used at most once a minute."""
    try:
        token = ApiToken.objects.select_related("user").get(key_hash=_hash(key), is_revoked=False)
    except ApiToken.DoesNotExist:
        return None
    now = timezone.now()
    if token.expires and token.expires <= now:
        return None
    if not token.user.is_active:
        return None
    if not token.last_used or now - token.last_used > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    return token.user


def api_token_revoke(*, token: ApiToken) -> None:
    token.is_revoked = True
    token.save(update_fields=["is_revoked", "updated"])


def _window():
    return timezone.now() - timedelta(minutes=settings.UUS["login_lockout_minutes"])


def login_check_throttle(*, username: str, address: str | None) -> None:
    """Refuse further attempts after too many failures for one user name or from one address."""
    since = _window()
    limit = settings.UUS["login_max_failures"]
    by_user = LoginAttempt.objects.filter(username=username.lower(), created__gte=since).count()
    by_addr = LoginAttempt.objects.filter(address=address, created__gte=since).count() if address else 0
    if by_user >= limit or by_addr >= 4 * limit:
        minutes = settings.UUS["login_lockout_minutes"]
        raise LoginThrottled(f"too many failed logins; try again in {minutes} minutes")


def login_authenticate(*, request, username: str, password: str) -> User | None:
    """Authenticate through Django's backends (local, then directory) with throttling."""
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    login_check_throttle(username=username, address=address)
    user = authenticate(request, username=username, password=password)
    if user is None:
        LoginAttempt.objects.create(username=username.lower()[:150], address=address)
        # prune old rows opportunistically so the table stays small
        LoginAttempt.objects.filter(created__lt=timezone.now() - timedelta(days=1)).delete()
        return None
    LoginAttempt.objects.filter(username=username.lower()).delete()
    return user
