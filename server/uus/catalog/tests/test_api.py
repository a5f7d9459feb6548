import pytest
from django.test import Client

from uus.catalog import services
from uus.testing.fixtures import PASSWORD

from .test_services import OSV

pytestmark = pytest.mark.django_db


@pytest.fixture
def notices():
    services.notices_import(str(OSV))


def test_notice_list_filters(notices, auditor_user, api_client_for):
    c = api_client_for(auditor_user)
    every = c.get("/api/v1/notices/?limit=1000").json()["results"]
    assert len(every) == len(list(OSV.rglob("*.json")))
    by_cve = c.get("/api/v1/notices/?q=CVE-2024-28085").json()["results"]
    assert {n["id"] for n in by_cve} >= {"USN-6719-1"}
    by_usn = c.get("/api/v1/notices/?q=usn-6719-1").json()["results"]
    assert [n["id"] for n in by_usn] == ["USN-6719-1"]
    by_pkg = c.get("/api/v1/notices/?package=util-linux").json()["results"]
    assert "USN-6719-1" in {n["id"] for n in by_pkg}
    assert "USN-6859-1" not in {n["id"] for n in by_pkg}  # openssh
    interim = c.get("/api/v1/notices/?release=25.10").json()["results"]
    assert interim and all(n["id"] != "USN-6719-1" for n in interim)
    high = c.get("/api/v1/notices/?priority=high").json()["results"]
    assert all(n["priority"] in ("high", "critical") for n in high)


def test_notice_detail_is_the_stored_notice(notices, auditor_user, api_client_for):
    data = api_client_for(auditor_user).get("/api/v1/notices/USN-6719-1/").json()
    assert data["id"] == "USN-6719-1" and data["affected"] and data["cves"]
    bsd = [b for a in data["affected"] for b in a["binaries"] if b["name"] == "bsdutils"]
    assert bsd and all(b["version"].startswith("1:") for b in bsd)  # binary epoch kept apart from source
    r = api_client_for(auditor_user).get("/api/v1/notices/USN-0000-0/")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_cve_detail_lists_fixes_per_release(notices, auditor_user, api_client_for):
    c = api_client_for(auditor_user)
    cve = c.get("/api/v1/cves/CVE-2024-28085/").json()
    assert "USN-6719-1" in cve["notices"]
    fixes = c.get("/api/v1/cves/CVE-2024-28085/fixes/").json()
    assert {f["release"] for f in fixes} >= {"20.04", "22.04"}


def test_notice_import_through_the_api_is_a_job(admin_user, api_client_for):
    r = api_client_for(admin_user).post("/api/v1/notices/import/", {"source": str(OSV)}, format="json")
    assert r.status_code == 202 and r.json()["job"]


def test_pages_render(notices, auditor_user):
    c = Client()
    c.login(username=auditor_user.username, password=PASSWORD)
    page = c.get("/notices/?q=CVE-2024-28085")
    assert page.status_code == 200 and b"USN-6719-1" in page.content and b"svg" in page.content
    assert b"fix needs Ubuntu Pro" in c.get("/notices/USN-8000-1/").content
    assert b"util-linux" in c.get("/cves/CVE-2024-28085/").content
    assert c.get("/catalog/packages/util-linux/").status_code == 200
    assert c.get("/upstreams/").status_code == 200
    assert c.get("/notices/USN-0-0/").status_code == 404
