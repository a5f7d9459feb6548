"""Reads of audit events."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEvent


def audit_event_list(
    *, action: str = "", target: str = "", actor: str = "", since=None, until=None
) -> QuerySet[AuditEvent]:
    """Events newest first; `action` and `target` match as a prefix ("approval." or "machine:web-")."""
    qs = AuditEvent.objects.all()
    if action:
        qs = qs.filter(action__startswith=action)
    if target:
        qs = qs.filter(target__startswith=target)
    if actor:
        qs = qs.filter(actor_name=actor)
    if since:
        qs = qs.filter(time__gte=since)
    if until:
        qs = qs.filter(time__lt=until)
    return qs
