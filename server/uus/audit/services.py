"""Writing audit events. Every app records through `audit_record`, inside its own transaction, so an
event exists exactly when the change it describes was stored."""

from __future__ import annotations

from .models import AuditEvent

SYSTEM = "system"


def _actor(actor) -> tuple[object | None, str]:
    """`actor` is a user, a string (a machine's hostname, "system") or None (system)."""
    if actor is None:
        return None, SYSTEM
    if isinstance(actor, str):
        return None, actor
    if getattr(actor, "is_authenticated", False):
        return actor, actor.get_username()
    return None, SYSTEM


def audit_record(actor, action: str, target: str, reason: str = "", /, **data) -> AuditEvent:
    """Record one event. Positional-only parameters, so `data` may hold any key (even "target")."""
    user, name = _actor(actor)
    return AuditEvent.objects.create(
        actor=user, actor_name=name, action=action, target=str(target)[:300], reason=reason or "", data=data
    )


def audit_record_many(rows: list[tuple[object, str, str, str, dict]]) -> int:
    """Many events in one statement: (actor, action, target, reason, data) tuples (job results in bulk)."""
    objs = []
    for actor, action, target, reason, data in rows:
        user, name = _actor(actor)
        objs.append(
            AuditEvent(actor=user, actor_name=name, action=action, target=str(target)[:300], reason=reason, data=data)
        )
    AuditEvent.objects.bulk_create(objs, batch_size=1000)
    return len(objs)
