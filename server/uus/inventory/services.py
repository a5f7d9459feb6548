"""Writes for machines and their enrollment."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from uus.core.exceptions import UusError

from .exceptions import EnrollmentRefused
from .models import EnrollmentToken

ENROLL_PREFIX = "uusenr_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_expiry(value: str | None) -> datetime | None:
    """'7d', '12h', '30m' from now, or an ISO 8601 time; None for no expiry."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", value)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return timezone.now() + timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: n})
    when = parse_datetime(value)
    if when is None:
        raise UusError(f"cannot read expiry '{value}': use e.g. 7d, 12h or 2026-12-31T00:00:00Z", code="invalid")
    if timezone.is_naive(when):
        when = timezone.make_aware(when, dt_timezone.utc)
    return when


def enrollment_token_create(*, comment: str = "", group: str = "", expires: datetime | None = None,
                            max_uses: int | None = None, user=None) -> tuple[EnrollmentToken, str]:
    if max_uses is not None and max_uses < 1:
        raise UusError("max_uses must be at least 1", code="invalid")
    key = ENROLL_PREFIX + secrets.token_urlsafe(24)
    token = EnrollmentToken.objects.create(
        prefix=key[:12], key_hash=key_hash(key), comment=comment, group=group, expires=expires,
        max_uses=max_uses, created_by=user if user is not None and user.is_authenticated else None,
        created_by_name=getattr(user, "username", "") or "",
    )
    return token, key


@transaction.atomic
def enrollment_token_use(key: str) -> EnrollmentToken:
    """Spend one use of a token, refusing unknown, revoked, expired and used-up tokens."""
    try:
        token = EnrollmentToken.objects.select_for_update().get(key_hash=key_hash(key or ""))
    except EnrollmentToken.DoesNotExist:
        raise EnrollmentRefused("unknown enrollment token") from None
    if token.is_revoked:
        raise EnrollmentRefused("this enrollment token was revoked")
    if token.expires and token.expires <= timezone.now():
        raise EnrollmentRefused("this enrollment token has expired")
    if token.max_uses is not None and token.uses >= token.max_uses:
        raise EnrollmentRefused("this enrollment token has been used up")
    EnrollmentToken.objects.filter(pk=token.pk).update(uses=F("uses") + 1)
    token.refresh_from_db()
    return token


def enrollment_token_revoke(*, token: EnrollmentToken) -> EnrollmentToken:
    token.is_revoked = True
    token.save(update_fields=["is_revoked", "updated"])
    return token
