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
