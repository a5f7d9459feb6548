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
