"""Approval rules over the REST API: create, list, delete (operator), read-only for auditors, clear
errors for bad input, and a rule created here is the one the periodic job applies."""

import pytest

from uus.approvals import selectors
from uus.approvals.models import Approval, ApprovalRule
from uus.approvals.services import machine_set_ring
from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice, rings_make
from uus.audit.models import AuditEvent
from uus.deployments.services import approval_rules_apply
from uus.inventory.tests.factories import entries, entry, machine_make

pytestmark = pytest.mark.django_db

JQ_MACHINE = entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq"))


def rows(response):
    data = response.json()
    return data["results"] if isinstance(data, dict) and "results" in data else data


@pytest.fixture
def rings():
    rings_make()


def test_rules_created_listed_applied_and_deleted_over_the_api(rings, operator_user, api_client_for):
    jq_archive()
    jq_notice(priority="high", rank=4)
    machine_set_ring(machine=machine_make("t1", packages=JQ_MACHINE, release="12"), ring=selectors.ring_get("test"))
    api = api_client_for(operator_user)
    r = api.post(
        "/api/v1/approval-rules/",
        {"ring": "test", "kind": "auto_approve_security", "min_priority": "high"},
        format="json",
    )
    assert r.status_code == 201, r.content
    security = r.json()
    assert (security["ring"], security["from_ring"], security["is_enabled"]) == ("test", None, True)
    assert security["created_by_name"] == operator_user.username
    r = api.post(
        "/api/v1/approval-rules/",
        {"ring": "production", "kind": "auto_promote", "from_ring": "test", "after_days": 3},
        format="json",
    )
    assert r.status_code == 201, r.content
    promote = r.json()
    assert promote["description"] == "promote test -> production after 3 days without failures"

    listed = rows(api.get("/api/v1/approval-rules/"))
    assert [(x["id"], x["kind"]) for x in listed] == [
        (security["id"], "auto_approve_security"),
        (promote["id"], "auto_promote"),
    ]
    assert [x["id"] for x in rows(api.get("/api/v1/approval-rules/?ring=production"))] == [promote["id"]]
    assert api.get(f"/api/v1/approval-rules/{promote['id']}/").json()["after_days"] == 3

    # the rule made over the API is the one the periodic job applies
    assert approval_rules_apply()["approved"] == 2
    assert set(Approval.objects.filter(ring__name="test").values_list("name", "version", "state")) == {
        ("jq", JQ_NEW, "approved"),
        ("libjq1", JQ_NEW, "approved"),
    }

    assert api.delete(f"/api/v1/approval-rules/{security['id']}/").status_code == 204
    assert list(ApprovalRule.objects.values_list("pk", flat=True)) == [promote["id"]]
    assert api.get(f"/api/v1/approval-rules/{security['id']}/").status_code == 404
    events = AuditEvent.objects.filter(action__startswith="rule.").order_by("id")
    assert [(e.action, e.actor_name) for e in events] == [
        ("rule.create", operator_user.username),
        ("rule.create", operator_user.username),
        ("rule.delete", operator_user.username),
    ]


@pytest.mark.parametrize(
    "body, code, words",
    [
        ({"ring": "test", "kind": "auto_approve_security", "min_priority": "urgent"}, 400, "min_priority 'urgent'"),
        ({"ring": "nope", "kind": "auto_approve_security", "min_priority": "high"}, 404, "no ring named 'nope'"),
        ({"ring": "test", "kind": "auto_promote", "from_ring": "test"}, 400, "another ring to promote from"),
        ({"ring": "test", "kind": "auto_promote"}, 400, "another ring to promote from"),
        ({"ring": "test", "kind": "approve_everything"}, 400, "kind"),
        ({"ring": "production", "kind": "auto_promote", "from_ring": "test", "after_days": -1}, 400, "after_days"),
    ],
)
def test_bad_rules_get_a_clear_error_and_change_nothing(rings, operator_user, api_client_for, body, code, words):
    r = api_client_for(operator_user).post("/api/v1/approval-rules/", body, format="json")
    assert r.status_code == code, r.content
    assert words in r.json()["error"]["message"]
    assert not ApprovalRule.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="rule.").exists()


def test_auditors_read_rules_but_cannot_change_them(rings, auditor_user, api_client_for):
    from uus.approvals.services import approval_rule_create

    rule = approval_rule_create(ring=selectors.ring_get("test"), kind="auto_approve_security", min_priority="medium")
    api = api_client_for(auditor_user)
    assert [x["id"] for x in rows(api.get("/api/v1/approval-rules/"))] == [rule.pk]
    body = {"ring": "test", "kind": "auto_approve_security", "min_priority": "high"}
    assert api.post("/api/v1/approval-rules/", body, format="json").status_code == 403
    assert api.delete(f"/api/v1/approval-rules/{rule.pk}/").status_code == 403
    assert ApprovalRule.objects.count() == 1


def test_updates_filters_and_bulk_pin_over_the_api(rings, operator_user, api_client_for):
    jq_archive()
    jq_notice(priority="high", rank=4)
    machine_make("p1", packages=JQ_MACHINE, release="12")
    api = api_client_for(operator_user)
    assert len(rows(api.get("/api/v1/updates/?kind=security&min_priority=high"))) == 2
    assert rows(api.get("/api/v1/updates/?kind=regular")) == []
    r = api.get("/api/v1/updates/?min_priority=urgent")
    assert r.status_code == 400 and "priority 'urgent'" in r.json()["error"]["message"]
    body = {"ring": "production", "state": "held", "is_pinned": True, "items": [{"package": "jq", "version": JQ_OLD}]}
    r = api.post("/api/v1/approvals/bulk/", body, format="json")
    assert r.status_code == 200 and r.json()[0]["is_pinned"] is True
