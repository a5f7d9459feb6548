"""Exposure API: auditors read; answers page by machine; bad input is a clear 400."""

from __future__ import annotations

import pytest

from uus.catalog.services import notices_import
from uus.exposure.tests.fleet import DATA
from uus.inventory.tests.factories import machine_make

OLD = "2.37.2-4ubuntu3"


@pytest.fixture
def fleet(db):
    notices_import(str(DATA / "usn"))
    pkgs = [
        ("uuid-runtime", "amd64", OLD, "util-linux", OLD, "installed"),
        ("openssh-server", "amd64", "1:8.9p1-3ubuntu0.1", "openssh", "1:8.9p1-3ubuntu0.1", "installed"),
    ]
    machines = [machine_make(f"web-{i:02d}", release="22.04", packages=pkgs) for i in range(5)]
    fixed = [("uuid-runtime", "amd64", "2.37.2-4ubuntu3.3", "util-linux", "2.37.2-4ubuntu3.3", "installed")]
    machines.append(machine_make("db-01", release="22.04", packages=fixed))
    return machines


def test_auditor_reads_the_machines_of_a_cve_with_counts_and_pages(fleet, auditor_user, api_client_for):
    c = api_client_for(auditor_user)
    r = c.get("/api/v1/cves/CVE-2024-28085/machines/?limit=2&fixed=1")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["summary"]["machines"] == 5 and body["summary"]["fixed"] == 1
    assert body["summary"]["by_status"] == {"fix_available": 5}
    assert [f["hostname"] for f in body["findings"]] == ["web-00", "web-01"]
    f = body["findings"][0]
    assert (f["notice"], f["package"], f["source"], f["installed_version"], f["fixed_version"]) == (
        "USN-6719-1",
        "uuid-runtime",
        "util-linux",
        OLD,
        "2.37.2-4ubuntu3.3",
    )
    assert f["pocket"] == "jammy-security" and f["pro_only"] is False
    r = c.get("/api/v1/cves/CVE-2024-28085/machines/?limit=2&offset=4")
    assert [f["hostname"] for f in r.json()["findings"]] == ["web-04"]


def test_notice_and_machine_endpoints(fleet, auditor_user, api_client_for):
    c = api_client_for(auditor_user)
    r = c.get("/api/v1/notices/USN-6859-1/machines/")
    assert r.status_code == 200
    assert {f["package"] for f in r.json()["findings"]} == {"openssh-server"}
    assert r.json()["summary"]["machines"] == 5
    r = c.get("/api/v1/machines/web-03/exposure/")
    assert r.status_code == 200
    assert {(f["notice"], f["cve"]) for f in r.json()["findings"]} == {
        ("USN-6719-1", "CVE-2024-28085"),
        ("USN-6859-1", "CVE-2024-6387"),
    }
    r = c.get("/api/v1/exposure/", {"q": "package:openssh-server<1:8.9p1-3ubuntu0.2"})
    assert r.json()["summary"]["machines"] == 5
    assert c.get("/api/v1/machines/db-01/exposure/").json()["findings"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cves/USN-6719-1/machines/",
        "/api/v1/notices/CVE-2024-1/machines/",
        "/api/v1/exposure/?q=package:Bad%20Name",
        "/api/v1/cves/CVE-2024-28085/machines/?limit=-1",
        "/api/v1/cves/CVE-2024-28085/machines/?limit=abc",
    ],
)
def test_bad_input_is_a_clear_400(fleet, auditor_user, api_client_for, path):
    r = api_client_for(auditor_user).get(path)
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("invalid_query", "invalid_parameter")


def test_anonymous_is_refused(fleet, api_client_for):
    r = api_client_for(None).get("/api/v1/cves/CVE-2024-28085/machines/")
    assert r.status_code in (401, 403)
