"""`uus rings rule-add | rules | rule-delete`, run as a user would (in a subprocess)."""

import json

import pytest

from uus.approvals.models import ApprovalRule
from uus.approvals.tests.factories import rings_make
from uus.audit.models import AuditEvent

pytestmark = pytest.mark.system


def test_rules_added_listed_and_deleted_from_the_cli(uus_cli):
    rings_make()
    assert uus_cli("rings", "rule-add", "test", "--auto-approve-security", "high").returncode == 0
    r = uus_cli("rings", "rule-add", "production", "--promote-from", "test", "--after-days", "5")
    assert r.returncode == 0, r.stderr
    rules = json.loads(uus_cli("rings", "rules", "--json").stdout)
    assert [(x["ring"], x["kind"], x["min_priority"], x["from_ring"], x["after_days"]) for x in rules] == [
        ("test", "auto_approve_security", "high", None, 0),
        ("production", "auto_promote", "", "test", 5),
    ]
    only = json.loads(uus_cli("rings", "rules", "--ring", "production", "--json").stdout)
    assert [x["id"] for x in only] == [rules[1]["id"]]
    text = uus_cli("rings", "rules").stdout
    assert "promote test -> production after 5 days without failures" in text

    r = uus_cli("rings", "rule-delete", str(rules[0]["id"]), "--reason", "too eager", "--as", "alice")
    assert r.returncode == 0, r.stderr
    assert list(ApprovalRule.objects.values_list("pk", flat=True)) == [rules[1]["id"]]
    event = AuditEvent.objects.get(action="rule.delete")
    assert (event.actor_name, event.reason) == ("alice", "too eager")
    r = uus_cli("rings", "rule-delete", "9999")
    assert r.returncode == 1 and "no approval rule with id '9999'" in r.stderr
    assert ApprovalRule.objects.count() == 1


def test_bulk_decisions_groups_and_machine_jobs_from_the_cli(uus_cli):
    from uus.approvals.models import Approval, MachineGroup
    from uus.approvals.tests.factories import JQ_OLD, jq_archive, jq_notice
    from uus.inventory.tests.factories import entries, entry, machine_make

    rings_make()
    jq_archive()
    jq_notice(priority="high", rank=4)
    jq = entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq"))
    for h in ("t1", "t2"):
        machine_make(h, packages=jq, release="12", os_id="debian")
    r = uus_cli("updates", "list", "--ring", "production", "--min-priority", "critical", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = uus_cli("approvals", "bulk", "production", "approved", "--pending", "--min-priority", "high", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(a["package"] for a in json.loads(r.stdout)) == ["jq", "libjq1"]
    r = uus_cli("approvals", "bulk", "test", "held", f"jq={JQ_OLD}", "--pin", "--comment", "app needs it")
    assert r.returncode == 0, r.stderr
    assert Approval.objects.get(ring__name="test").is_pinned
    r = uus_cli("approvals", "bulk", "test", "declined", "jq")
    assert r.returncode == 1 and "'jq' is not PACKAGE=VERSION" in r.stderr
    r = uus_cli("approvals", "bulk", "test", "approved", "--min-priority", "high")
    assert r.returncode == 1 and "add --pending" in r.stderr

    assert uus_cli("groups", "create", "pilots", "--machine", "t1").returncode == 0
    r = uus_cli("groups", "members", "pilots", "--add", "t2", "--remove", "t1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["machines"] == ["t2"]
    r = uus_cli("deployments", "create", "--target", "machine:t1,t2", "--action", "remove", "--package", "jq")
    assert r.returncode == 0, r.stderr
    jobs = json.loads(uus_cli("deployments", "jobs", "--machine", "t2", "--json").stdout)
    assert [(j["machine"], j["type"], j["state"]) for j in jobs] == [("t2", "apt_remove", "queued")]
    assert uus_cli("deployments", "jobs").returncode == 1
    assert uus_cli("groups", "delete", "pilots", "--as", "alice").returncode == 0
    assert not MachineGroup.objects.exists()
    assert AuditEvent.objects.get(action="group.delete").actor_name == "alice"
