"""The REST API of rings, approvals, updates, groups, deployments and audit events, as a client sees it."""

import pytest

from uus.approvals import selectors as approvals
from uus.approvals import services as approval_services
from uus.approvals.models import Approval
from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice, rings_make
from uus.audit.models import AuditEvent
from uus.deployments.models import Deployment
from uus.inventory.tests.factories import entries, entry, machine_make

pytestmark = pytest.mark.django_db

JQ_MACHINE = entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq"))


@pytest.fixture
def fleet():
    rings_make()
    jq_archive()
    jq_notice()
    return {h: machine_make(h, packages=JQ_MACHINE, release="12", os_id="debian") for h in ("t1", "p1")}


def rows(response):
    data = response.json()
    return data["results"] if isinstance(data, dict) and "results" in data else data


def test_ring_members_approvals_and_deployment_over_the_api(fleet, operator_user, api_client_for):
    api = api_client_for(operator_user)
    r = api.post("/api/v1/rings/test/members/", {"machines": ["t1"]}, format="json")
    assert r.status_code == 200 and r.json()["machines"] == 1
    updates = rows(api.get("/api/v1/updates/?ring=test"))
    assert [(u["package"], u["version"], u["priority"], u["state"]) for u in updates] == [
        ("jq", JQ_NEW, "high", "pending"),
        ("libjq1", JQ_NEW, "high", "pending"),
    ]
    r = api.post(
        "/api/v1/approvals/bulk/",
        {
            "ring": "test",
            "state": "approved",
            "items": [{"package": u["package"], "version": u["version"]} for u in updates],
        },
        format="json",
    )
    assert r.status_code == 200 and {a["state"] for a in r.json()} == {"approved"}
    r = api.post("/api/v1/deployments/", {"target": "ring:test"}, format="json")
    assert r.status_code == 201, r.content
    dep = r.json()
    assert dep["state"] == "running" and [j["machine"] for j in dep["jobs"]] == ["t1"]
    assert dep["jobs"][0]["params"]["packages"] == [f"jq={JQ_NEW}", f"libjq1={JQ_NEW}"]
    assert api.get(f"/api/v1/deployments/{dep['id']}/").json()["counts"]["queued"] == 1
    events = rows(api.get("/api/v1/audit-events/?action=approval."))
    assert {(e["action"], e["actor_name"]) for e in events} == {("approval.approved", operator_user.username)}


def test_bad_input_gets_a_clear_error_and_changes_nothing(fleet, operator_user, api_client_for):
    api = api_client_for(operator_user)
    r = api.post(
        "/api/v1/approvals/", {"ring": "test", "package": "jq", "version": "1 0", "state": "approved"}, format="json"
    )
    assert r.status_code == 400 and "not a valid Debian version" in r.json()["error"]["message"]
    r = api.post(
        "/api/v1/approvals/", {"ring": "nope", "package": "jq", "version": JQ_NEW, "state": "approved"}, format="json"
    )
    assert r.status_code == 404 and "no ring named 'nope'" in r.json()["error"]["message"]
    r = api.post("/api/v1/deployments/", {"target": "ring:test", "action": "install"}, format="json")
    assert r.status_code == 400 and "needs packages" in r.json()["error"]["message"]
    r = api.post("/api/v1/deployments/", {"target": "group:none"}, format="json")
    assert r.status_code == 404
    r = api.post("/api/v1/groups/", {"name": "bad", "kind": "rule"}, format="json")
    assert r.status_code == 400 and "release or a hostname pattern" in r.json()["error"]["message"]
    assert not Approval.objects.exists() and not Deployment.objects.exists() and not AuditEvent.objects.exists()


def test_groups_over_the_api(fleet, operator_user, api_client_for):
    api = api_client_for(operator_user)
    r = api.post("/api/v1/groups/", {"name": "pilots", "members": ["p1"]}, format="json")
    assert r.status_code == 201 and r.json()["machines"] == ["p1"]
    r = api.patch("/api/v1/groups/pilots/", {"members": ["t1"]}, format="json")
    assert r.status_code == 200 and r.json()["machines"] == ["t1"]
    r = api.post("/api/v1/groups/", {"name": "deb", "kind": "rule", "release": "12"}, format="json")
    assert r.json()["machines"] == ["p1", "t1"]
    approval_services.approval_set(ring=approvals.ring_get("production"), name="jq", version=JQ_NEW, state="approved")
    dep = api.post("/api/v1/deployments/", {"target": "group:pilots"}, format="json").json()
    # t1 is in production (no membership): the group deployment installs production's approvals
    assert [j["params"]["packages"] for j in dep["jobs"]] == [[f"jq={JQ_NEW}"]]
