import pytest

from uus.audit.models import AuditEvent
from uus.audit.selectors import audit_event_list
from uus.audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_events_are_append_only_and_keep_the_actor_name(admin_user):
    e = audit_record(admin_user, "approval.approved", "ring:test", "USN-1", target="clash is fine", package="jq")
    assert (e.actor_name, e.data) == (admin_user.username, {"target": "clash is fine", "package": "jq"})
    e.reason = "rewritten"
    with pytest.raises(ValueError):
        e.save()
    with pytest.raises(ValueError):
        e.delete()
    username = admin_user.username
    admin_user.delete()
    e = AuditEvent.objects.get()
    assert e.actor is None and e.actor_name == username  # the name is kept after the user is gone
    audit_record("web-01", "job.result", "machine:web-01")
    audit_record(None, "deployment.halted", "deployment:1")
    assert [x.actor_name for x in audit_event_list(target="machine:")] == ["web-01"]
    assert [x.action for x in audit_event_list(action="deployment.")] == ["deployment.halted"]
    assert audit_event_list(actor="system").count() == 1


def test_the_database_refuses_updates_and_deletes_of_events(admin_user):
    """Past the ORM's refusals, raw SQL is refused by the database's own triggers (SQLite and PostgreSQL)."""
    from django.db import DatabaseError, connection, transaction

    e = audit_record(admin_user, "approval.declined", "ring:test", "breaks the build", package="jq")
    for qs_change in (lambda: AuditEvent.objects.filter(pk=e.pk).update(reason="x"), AuditEvent.objects.all().delete):
        with pytest.raises(ValueError, match="append-only"):
            qs_change()
    for sql in (
        "UPDATE audit_auditevent SET reason = 'rewritten' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_name = 'someone else', actor_id = NULL WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [e.pk])
    e = AuditEvent.objects.get(pk=e.pk)
    assert (e.reason, e.actor_name, e.actor_id) == ("breaks the build", admin_user.username, admin_user.pk)
    # the one change allowed: a deleted user's events lose the link, not the name
    admin_user.delete()
    e = AuditEvent.objects.get(pk=e.pk)
    assert (e.actor_id, e.actor_name, e.reason) == (None, e.actor_name, "breaks the build")
