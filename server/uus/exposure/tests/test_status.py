"""A finding's status follows the fix through approval, deployment and the machine's next inventory."""

from __future__ import annotations

import pytest

from uus.approvals import selectors as approvals
from uus.approvals import services as approval_services
from uus.catalog.services import notices_import
from uus.deployments import services as deployments
from uus.exposure import selectors
from uus.exposure.tests.fleet import DATA
from uus.inventory import packages as pk
from uus.inventory import services as inventory
from uus.inventory.tests.factories import machine_make

OLD = "2.37.2-4ubuntu3"  # util-linux on the 22.04.2 server ISO
FIX = "2.37.2-4ubuntu3.3"  # USN-6719-1's fix for 22.04


def _uuid_runtime(version: str) -> list[pk.Entry]:
    return [("uuid-runtime", "amd64", version, "util-linux", version, "installed")]


@pytest.fixture
def hosts(db):
    notices_import(str(DATA / "usn" / "USN-6719-1.json"))
    test = approval_services.ring_create(name="canary", position=5)
    a = machine_make("web-a", release="22.04", packages=_uuid_runtime(OLD))
    b = machine_make("web-b", release="22.04", packages=_uuid_runtime(OLD))
    approval_services.machine_set_ring(machine=b, ring=test)
    return a, b


def _status() -> dict[str, dict]:
    rows = selectors.findings(selectors.parse_query("CVE-2024-28085"))
    # the result page counts groups of alike machines (same set, release, kernel and ring) from the stored
    # machine counts; its counts must be what the per-machine list says (deploying/deployed count as approved)
    page = selectors.search(selectors.parse_query("CVE-2024-28085"), count_fixed=True)
    want = selectors.summary(
        [{**r, "status": "approved" if r["status"] in ("deploying", "deployed") else r["status"]} for r in rows]
    )
    assert {k: v for k, v in page["summary"].items() if k != "fixed"} == want
    assert [(r["hostname"], r["status"]) for r in page["findings"]] == [(r["hostname"], r["status"]) for r in rows]
    return {r["hostname"]: r for r in rows}


def test_status_moves_from_fix_available_to_approved_deploying_deployed_and_fixed(hosts):
    a, _ = hosts
    rows = _status()
    assert {h: r["status"] for h, r in rows.items()} == {"web-a": "fix_available", "web-b": "fix_available"}
    assert rows["web-a"]["fixed_version"] == FIX and rows["web-a"]["pocket"] == "jammy-security"

    # approved for production (web-a's ring) only; an approval of a version below the fix does not count
    production = approvals.ring_get("production")
    approval_services.approval_set(ring=production, name="uuid-runtime", version=FIX, state="approved")
    approval_services.approval_set(
        ring=approvals.ring_get("canary"), name="uuid-runtime", version="2.37.2-4ubuntu3.2", state="approved"
    )
    rows = _status()
    assert (rows["web-a"]["status"], rows["web-a"]["approved_version"]) == ("approved", FIX)
    assert rows["web-b"]["status"] == "fix_available"

    d = deployments.deployment_create(target="machine:web-a")
    job = d.jobs.get()
    assert job.params["packages"] == [f"uuid-runtime={FIX}"]
    assert _status()["web-a"]["status"] == "deploying"

    deployments.job_results_record(
        a,
        [
            {
                "job_id": str(job.pk),
                "status": "succeeded",
                "error": None,
                "exit_code": 0,
                "output": "",
                "started_at": "2026-11-25T10:00:00Z",
                "finished_at": "2026-11-25T10:00:05Z",
                "packages": [{"name": "uuid-runtime", "architecture": "amd64", "before": OLD, "after": FIX}],
                "reboot_required": False,
            }
        ],
    )
    assert _status()["web-a"]["status"] == "deployed"  # installed, the inventory not reported yet

    entries = _uuid_runtime(FIX)
    inventory.inventory_apply_full(machine=a, inventory_hash=pk.inventory_hash(entries), entries=entries)
    rows = selectors.findings(selectors.parse_query("CVE-2024-28085"))
    assert [r["hostname"] for r in rows] == ["web-b"]
    q = selectors.parse_query("CVE-2024-28085")
    assert selectors.fixed_machines(q, {r["machine_id"] for r in rows}) == 1
    s = selectors.summary(rows)
    assert s["machines"] == 1 and s["by_status"] == {"fix_available": 1}
    assert selectors.search(q, count_fixed=True)["summary"]["fixed"] == 1
