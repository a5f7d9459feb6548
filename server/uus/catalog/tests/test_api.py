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
    cve_page = c.get("/cves/CVE-2024-28085/").content.decode()
    assert "util-linux" in cve_page and "Ubuntu:22.04:LTS" in cve_page and "USN-6719-1" in cve_page
    assert "2.37.2-4ubuntu3.3" in cve_page  # the fixed version on 22.04
    assert c.get("/catalog/packages/util-linux/").status_code == 200
    assert c.get("/upstreams/").status_code == 200
    assert c.get("/notices/USN-0-0/").status_code == 404


def test_notice_list_by_published_dates_kind_and_codename(notices, auditor_user, api_client_for):
    c = api_client_for(auditor_user)

    def ids(query: str) -> set[str]:
        r = c.get(f"/api/v1/notices/?limit=1000&{query}")
        assert r.status_code == 200, r.content
        return {n["id"] for n in r.json()["results"]}

    assert ids("since=2024-03-27&until=2024-03-27") == {"USN-6719-1"}  # published 2024-03-27T15:23:13Z
    assert ids("since=2024-03-27T15:23:14Z&until=2024-03-27") == set()
    assert ids("until=2022-09-15") == {"UBUNTU-CVE-2016-20013", "UBUNTU-CVE-2021-3782", "USN-5614-1"}
    assert ids("since=2026-01-01") == {"USN-8000-1"}
    assert ids("kind=cve") == {"UBUNTU-CVE-2016-20013", "UBUNTU-CVE-2021-3782"}
    assert ids("release=jammy") == ids("release=22.04") and "USN-6719-1" in ids("release=jammy")
    assert ids("release=Ubuntu:Pro:Realtime:24.04:LTS") and ids("release=Ubuntu:Pro:Realtime:24.04:LTS") < ids(
        "release=24.04"
    )
    for bad in ("since=yesterday", "until=2024-13-45", "priority=urgent"):
        r = c.get(f"/api/v1/notices/?{bad}")
        assert r.status_code == 400 and r.json()["error"]["message"], bad


def test_notice_page_filters(notices, auditor_user):
    c = Client()
    c.login(username=auditor_user.username, password=PASSWORD)
    page = c.get("/notices/?since=2024-03-27&until=2024-03-27").content.decode()
    assert "USN-6719-1" in page and "USN-6650-1" not in page and 'value="2024-03-27"' in page
    page = c.get("/notices/?package=openssh").content.decode()
    assert "USN-6859-1" in page and "USN-6719-1" not in page
    page = c.get("/notices/?kind=cve&q=CVE-2021-3782").content.decode()
    assert "UBUNTU-CVE-2021-3782" in page and "USN-5614-1" not in page
    bad = c.get("/notices/?since=soon")
    assert bad.status_code == 200 and b"is not a date" in bad.content and b"No notices match" in bad.content


@pytest.fixture
def synced(tmp_path):
    """The real bookworm-updates index synced from loopback (Debian's own signature, clock pinned)."""
    from .loopback import serve_directory
    from .test_services import PINNED_NOW, _add, _archive

    _archive(tmp_path)
    with serve_directory(tmp_path / "www") as lb:
        upstream = _add(lb.url + "/debian")
        services.upstream_sync(upstream, now=PINNED_NOW)
    return upstream


def test_package_versions_per_pocket(synced, auditor_user, api_client_for):
    rows = api_client_for(auditor_user).get("/api/v1/archive-packages/?name=openssh").json()["results"]
    by_name = {r["name"]: r for r in rows}
    assert {"openssh-client", "openssh-server", "openssh-sftp-server"} <= set(by_name)
    ssh = by_name["openssh-client"]
    assert (ssh["version"], ssh["source"], ssh["pocket"], ssh["suite"], ssh["codename"], ssh["upstream"]) == (
        "1:9.2p1-2+deb12u7",
        "openssh",
        "updates",
        "bookworm-updates",
        "bookworm",
        "debian",
    )
    assert ssh["filename"].startswith("pool/main/o/openssh/") and len(ssh["sha256"]) == 64 and ssh["size"] > 0
    assert ssh["section"] == "net" and ssh["priority"] == "standard" and ssh["architecture"] == "amd64"
    c = Client()
    c.login(username=auditor_user.username, password=PASSWORD)
    page = c.get("/catalog/packages/openssh/").content.decode()
    assert "openssh-client" in page and "1:9.2p1-2+deb12u7" in page and "<td>updates</td>" in page


def test_upstream_status_page_and_api(synced, auditor_user, admin_user, api_client_for):
    data = api_client_for(auditor_user).get("/api/v1/upstreams/debian/").json()
    assert data["last_success"] and data["last_error"] == ""
    (index,) = data["indexes"]
    assert (index["pocket"], index["package_count"], index["suite"]) == ("updates", 38, "bookworm-updates")
    assert index["sha256"].startswith("80a1f6ee") and index["variant"].endswith("/main/binary-amd64/Packages")
    c = Client()
    c.login(username=auditor_user.username, password=PASSWORD)
    page = c.get("/upstreams/").content.decode()
    assert "bookworm-updates" in page and "<td>38</td>" in page and "Sync now" not in page  # auditors only read
    c.login(username=admin_user.username, password=PASSWORD)
    assert "Sync now" in c.get("/upstreams/").content.decode()
    r = c.post("/upstreams/debian/sync/")
    assert r.status_code == 302 and "/jobs/" in r["Location"]
    r = api_client_for(admin_user).post("/api/v1/upstreams/debian/sync/")
    assert r.status_code == 202 and r.json()["job"]
