"""Notice import and upstream sync, called directly, against the real OSV files and a real signed
Debian index served on loopback."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from uus.catalog import services
from uus.catalog.models import AffectedPackage, ArchivePackage, Cve, Notice, Upstream
from uus.catalog.sources import apt
from uus.core.debversion import version_key

from .loopback import closed_port_url, serve_directory

DATA = Path(__file__).parent / "data"
OSV = DATA / "usn-osv" / "osv"
KEYRING = DATA / "keyrings" / "debian-archive-keyring.gpg"
PINNED_NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # inside the real InRelease's validity window

pytestmark = pytest.mark.django_db


def _osv_files():
    return sorted(OSV.rglob("*.json"))


def test_every_real_notice_imports_and_matches_its_file():
    result = services.notices_import(str(OSV))
    files = _osv_files()
    assert result.imported == len(files) and not result.failed
    for path in files:
        doc = json.loads(path.read_text())
        notice = Notice.objects.get(pk=doc["id"])
        stored_fixed = set(notice.affected.values_list("fixed", flat=True))
        for entry in doc["affected"]:
            for rng in entry["ranges"]:
                for ev in rng["events"]:
                    if "fixed" in ev:
                        assert ev["fixed"] in stored_fixed, (doc["id"], ev["fixed"])
            for c in ((entry.get("database_specific") or {}).get("cves_map") or {}).get("cves", []):
                assert notice.cves.filter(pk=c["id"]).exists(), (doc["id"], c["id"])
        mapped = [
            c["id"]
            for e in doc["affected"]
            for c in ((e.get("database_specific") or {}).get("cves_map") or {}).get("cves", [])
        ]
        if mapped:  # cves_map, when present and non-empty, is the notice's CVE list
            assert set(notice.cves.values_list("id", flat=True)) == set(mapped)
        for up in doc.get("upstream", []):  # the raw upstream list is kept whole
            assert up in notice.upstream_ids
        assert notice.affected.count() == len(doc["affected"])


def test_pro_entries_are_kept_apart_and_keys_order_versions():
    services.notices_import(str(OSV))
    pro = AffectedPackage.objects.filter(is_pro=True)
    assert pro.exists() and all(a.ecosystem.startswith("Ubuntu:Pro:") for a in pro)
    assert AffectedPackage.objects.filter(ecosystem="Ubuntu:Pro:Realtime:24.04:LTS", pro_variant="Realtime").exists()
    a = AffectedPackage.objects.exclude(fixed="").first()
    assert bytes(a.fixed_key) == version_key(a.fixed)
    # the schema 1.6.3 notice takes its CVEs from `related`
    assert Notice.objects.get(pk="USN-7206-1").cves.exists()


def test_import_is_idempotent_and_a_newer_modified_replaces(tmp_path):
    services.notices_import(str(OSV))
    again = services.notices_import(str(OSV))
    assert again.imported == again.updated == 0 and again.unchanged == len(_osv_files())
    doc = json.loads((OSV / "usn" / "USN-6719-1.json").read_text())
    doc["modified"] = "2099-01-01T00:00:00Z"
    doc["summary"] = "replaced summary"
    doc["affected"] = doc["affected"][:1]
    (tmp_path / "USN-6719-1.json").write_text(json.dumps(doc))
    r = services.notices_import(str(tmp_path / "USN-6719-1.json"))
    assert r.updated == 1
    n = Notice.objects.get(pk="USN-6719-1")
    assert n.summary == "replaced summary" and n.affected.count() == 1


def test_malformed_files_are_reported_and_the_rest_imported(tmp_path):
    shutil.copy(OSV / "usn" / "USN-6719-1.json", tmp_path)
    (tmp_path / "USN-9999-1.json").write_text('{"id": "USN-9999-1", "affected": [')
    (tmp_path / "USN-9998-1.json").write_text(json.dumps({"id": "USN-9998-1"}))
    result = services.notices_import(str(tmp_path))
    assert result.imported == 1
    assert sorted(Path(f["path"]).name for f in result.failed) == ["USN-9998-1.json", "USN-9999-1.json"]
    assert all(f["reason"] for f in result.failed)
    assert not Notice.objects.filter(pk__in=["USN-9999-1", "USN-9998-1"]).exists()


def test_an_older_modified_never_replaces_a_newer_one(tmp_path):
    services.notices_import(str(OSV / "usn" / "USN-6719-1.json"))
    doc = json.loads((OSV / "usn" / "USN-6719-1.json").read_text())
    doc["modified"], doc["summary"] = "2001-01-01T00:00:00Z", "an old copy"
    (tmp_path / "old.json").write_text(json.dumps(doc))
    r = services.notices_import(str(tmp_path / "old.json"))
    assert (r.imported, r.updated, r.unchanged) == (0, 0, 1)
    assert Notice.objects.get(pk="USN-6719-1").summary != "an old copy"


def test_a_notice_too_big_for_the_catalog_is_reported_and_nothing_of_it_stored(tmp_path):
    """Both databases refuse the same notices: lengths are checked before writing (SQLite would
    store any length, PostgreSQL would raise in the middle of the notice)."""
    shutil.copy(OSV / "usn" / "USN-6719-1.json", tmp_path)
    doc = json.loads((OSV / "usn" / "USN-6650-1.json").read_text())
    doc["id"] = "USN-9997-1"
    doc["affected"][-1]["package"]["name"] = "x" * 300
    (tmp_path / "USN-9997-1.json").write_text(json.dumps(doc))
    result = services.notices_import(str(tmp_path))
    assert result.imported == 1
    (failed,) = result.failed
    assert failed["path"].endswith("USN-9997-1.json")
    assert re.fullmatch(
        r"affected\[\d+\]\.package\.name is 300 characters long, more than the 200 the catalog keeps", failed["reason"]
    )
    assert not Notice.objects.filter(pk="USN-9997-1").exists()
    assert Notice.objects.count() == 1
    assert not Cve.objects.filter(notices__isnull=True).exists()  # no CVE row left over from the refused one


def test_notices_import_from_a_tarball(tmp_path):
    import tarfile

    archive = tmp_path / "osv.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(OSV, arcname="osv")
    assert services.notices_import(str(archive)).imported == len(_osv_files())


# ---------------------------------------------------------------------------------- upstream sync


def _archive(tmp_path) -> Path:
    """A copy of the real bookworm-updates index laid out as Debian serves it (plain Packages only)."""
    root = tmp_path / "www" / "debian"
    dists = root / "dists" / "bookworm-updates"
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    shutil.copy(DATA / "debian-bookworm-updates" / "InRelease", dists / "InRelease")
    shutil.copy(DATA / "debian-bookworm-updates" / "Packages", dists / "main" / "binary-amd64" / "Packages")
    return root


def _add(url: str) -> Upstream:
    return services.upstream_add(
        name="debian",
        url=url,
        suites=["bookworm-updates"],
        components=["main"],
        architectures=["amd64"],
        keyring_data=KEYRING.read_bytes(),
    )


def _stanzas(path: Path) -> int:
    return sum(1 for block in path.read_text().split("\n\n") if block.strip())


def test_sync_stores_every_package_of_a_real_signed_index(tmp_path):
    root = _archive(tmp_path)
    with serve_directory(tmp_path / "www") as lb:
        upstream = _add(lb.url + "/debian")
        result = services.upstream_sync(upstream, now=PINNED_NOW)
        want = _stanzas(root / "dists/bookworm-updates/main/binary-amd64/Packages")
        assert result.packages == want == ArchivePackage.objects.count()
        index = upstream.indexes.get()
        assert (index.pocket, index.codename, index.package_count) == ("updates", "bookworm", want)
        p = ArchivePackage.objects.first()
        assert p.sha256 and p.filename.startswith("pool/") and bytes(p.version_key) == version_key(p.version)
        # unchanged index: skipped without downloading Packages again
        lb.requests.clear()
        again = services.upstream_sync(upstream, now=PINNED_NOW)
        assert again.indexes_unchanged == 1 and again.indexes_changed == 0
        assert not any(r.endswith("Packages") for r in lb.requests)


@pytest.mark.parametrize(
    "damage", ["tampered_signature", "tampered_index", "truncated_index", "server_down", "date_in_future"]
)
def test_a_failed_sync_keeps_the_previous_catalog(tmp_path, damage):
    root = _archive(tmp_path)
    with serve_directory(tmp_path / "www") as lb:
        upstream = _add(lb.url + "/debian")
        services.upstream_sync(upstream, now=PINNED_NOW)
        before = sorted(ArchivePackage.objects.values_list("name", "version"))
        # force a re-download of the index on the next sync
        upstream.indexes.update(sha256="0" * 64)
        inrelease = root / "dists/bookworm-updates/InRelease"
        packages = root / "dists/bookworm-updates/main/binary-amd64/Packages"
        now = PINNED_NOW
        if damage == "tampered_signature":
            text = inrelease.read_text()
            assert "Date: Mon, 23 Nov 2026" in text
            inrelease.write_text(text.replace("Date: Mon, 23 Nov 2026", "Date: Sat, 01 Jan 2000"))
        elif damage == "tampered_index":
            packages.write_text(packages.read_text().replace("Version: ", "Version: 9", 1))
        elif damage == "truncated_index":
            lb.lie_length["/debian/dists/bookworm-updates/main/binary-amd64/Packages"] = packages.stat().st_size
        elif damage == "date_in_future":  # a clock far behind the Release's Date: refused as not yet valid
            now = datetime(2020, 1, 1, tzinfo=UTC)
        if damage == "server_down":
            upstream.url = closed_port_url() + "/debian"
            upstream.save()
        with pytest.raises(apt.ArchiveError) as err:
            services.upstream_sync(upstream, now=now)
        assert err.value.message
        upstream.refresh_from_db()
        assert upstream.last_error == err.value.message
        assert sorted(ArchivePackage.objects.values_list("name", "version")) == before


def test_upstream_add_validates_its_input(tmp_path):
    from uus.core.exceptions import Conflict, UusError

    with pytest.raises(UusError, match="must start with"):
        services.upstream_add(
            name="x",
            url="ftp://h/",
            suites=["a"],
            components=["main"],
            architectures=["amd64"],
            keyring_data=KEYRING.read_bytes(),
        )
    with pytest.raises(UusError, match="no OpenPGP public key"):
        services.upstream_add(
            name="x",
            url="http://h/",
            suites=["a"],
            components=["main"],
            architectures=["amd64"],
            keyring_data=b"not a key",
        )
    with pytest.raises(UusError, match="invalid suites"):
        services.upstream_add(
            name="x",
            url="http://h/",
            suites=["../etc"],
            components=["main"],
            architectures=["amd64"],
            keyring_data=KEYRING.read_bytes(),
        )
    _add("http://127.0.0.1:9/debian")
    with pytest.raises(Conflict):
        _add("http://127.0.0.1:9/debian")
    assert Upstream.objects.count() == 1 and Cve.objects.count() == 0


def test_an_expired_release_is_refused_and_the_catalog_kept(tmp_path):
    """Valid-Until: the real trixie-updates InRelease is valid until 2026-11-30 02:09:33 UTC."""
    dists = tmp_path / "www" / "debian" / "dists" / "trixie-updates"
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    shutil.copy(DATA / "debian-trixie-updates" / "InRelease", dists / "InRelease")
    shutil.copy(DATA / "debian-trixie-updates" / "Packages", dists / "main" / "binary-amd64" / "Packages")
    with serve_directory(tmp_path / "www") as lb:
        upstream = services.upstream_add(
            name="trixie",
            url=lb.url + "/debian",
            suites=["trixie-updates"],
            components=["main"],
            architectures=["amd64"],
            keyring_data=KEYRING.read_bytes(),
        )
        assert services.upstream_sync(upstream, now=PINNED_NOW).packages == 3
        upstream.indexes.update(sha256="0" * 64)  # make the next sync fetch again
        with pytest.raises(apt.ExpiredRelease, match="expired on 2026-11-30 02:09 UTC") as err:
            services.upstream_sync(upstream, now=datetime(2026, 12, 1, tzinfo=UTC))
    upstream.refresh_from_db()
    assert upstream.last_error == err.value.message and upstream.last_error_at
    assert sorted(ArchivePackage.objects.values_list("name", flat=True)) == [
        "libdatetime-timezone-perl",
        "tzdata",
        "tzdata-legacy",
    ]


@pytest.fixture
def tls_mirror(tmp_path_factory):
    """A CA and a certificate for 127.0.0.1 signed by it (openssl CLI)."""
    from uus.testing.slapd import make_ca, make_server_certificate

    d = tmp_path_factory.mktemp("tls")
    ca_cert, ca_key = make_ca(d, "ca", "UUS test mirror CA")
    cert, key = make_server_certificate(d, "mirror", ca_cert, ca_key, ["IP:127.0.0.1"])
    return ca_cert, cert, key


def test_sync_over_https(tmp_path, tls_mirror, monkeypatch):
    ca_cert, cert, key = tls_mirror
    root = _archive(tmp_path)
    with serve_directory(tmp_path / "www", tls=(cert, key)) as https:
        upstream = _add(https.url + "/debian")
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))  # the CA not trusted yet
        with pytest.raises(apt.DownloadError, match="TLS certificate is not trusted"):
            services.upstream_sync(upstream, now=PINNED_NOW)
        upstream.refresh_from_db()
        assert "not trusted" in upstream.last_error and not ArchivePackage.objects.exists()
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_cert))  # the admin adds the mirror's CA
        result = services.upstream_sync(upstream, now=PINNED_NOW)
    assert result.packages == _stanzas(root / "dists/bookworm-updates/main/binary-amd64/Packages") == 38
    upstream.refresh_from_db()
    assert upstream.last_error == "" and upstream.indexes.get().variant.startswith("https://127.0.0.1:")


def test_sync_from_a_file_url(tmp_path):
    root = _archive(tmp_path)
    upstream = _add(root.as_uri())
    assert upstream.url.startswith("file:///")
    result = services.upstream_sync(upstream, now=PINNED_NOW)
    assert result.packages == 38 == ArchivePackage.objects.count()
    assert upstream.indexes.get().variant == root.as_uri() + "/dists/bookworm-updates/main/binary-amd64/Packages"


def test_sync_records_the_pocket_of_every_suite_and_the_variant_fetched(tmp_path, archive_key):
    """One upstream with the release, -updates and -security suites of a Release + Release.gpg archive
    (by-hash, xz, gz and plain listed): each package row carries its pocket, and the index records
    the by-hash .xz it was fetched from, as apt would fetch it."""
    from .signed_archive import REAL_PACKAGES, build_archive

    real = REAL_PACKAGES.read_bytes()
    openssh = b"Version: 1:9.2p1-2+deb12u7"
    versions = {"bookworm": b"1:9.2p1-2+deb12u3", "bookworm-updates": b"1:9.2p1-2+deb12u5"}
    for suite in ("bookworm", "bookworm-updates", "bookworm-security"):
        packages = real.replace(openssh, b"Version: " + versions[suite]) if suite in versions else real
        build_archive(tmp_path, archive_key, by_hash=True, inrelease=False, suite=suite, packages=packages)
    with serve_directory(tmp_path) as lb:
        upstream = services.upstream_add(
            name="deb",
            url=lb.url + "/repo",
            suites=["bookworm", "bookworm-updates", "bookworm-security"],
            components=["main"],
            architectures=["amd64"],
            keyring_data=archive_key.armored.read_bytes(),  # an ASCII-armored keyring is accepted
        )
        result = services.upstream_sync(upstream, now=PINNED_NOW)
        assert (result.indexes_changed, result.packages) == (3, 3 * 38)
        assert not any(r.endswith(("/Packages", "/Packages.gz", "/Packages.xz")) for r in lb.requests)
        pockets = {i.suite: (i.pocket, i.codename, "/by-hash/SHA256/" in i.variant) for i in upstream.indexes.all()}
        assert pockets == {
            "bookworm": ("release", "bookworm", True),
            "bookworm-updates": ("updates", "bookworm", True),
            "bookworm-security": ("security", "bookworm", True),
        }
        rows = ArchivePackage.objects.filter(name="openssh-client").values_list("index__pocket", "version")
        assert sorted(rows) == [
            ("release", "1:9.2p1-2+deb12u3"),
            ("security", "1:9.2p1-2+deb12u7"),
            ("updates", "1:9.2p1-2+deb12u5"),
        ]
        # the newest version in SQL, by the version key: what matching relies on
        newest = ArchivePackage.objects.filter(name="openssh-client").order_by("-version_key").first()
        assert newest.version == "1:9.2p1-2+deb12u7" and newest.index.pocket == "security"


def test_a_cve_first_seen_unrated_takes_the_priority_a_later_notice_gives_it(tmp_path):
    doc = json.loads((OSV / "usn" / "USN-6400-1.json").read_text())
    unrated = json.loads(json.dumps(doc))
    unrated["id"] = "USN-9996-1"
    for entry in unrated["affected"]:
        entry.get("database_specific", {}).pop("cves_map", None)  # CVEs from `upstream`: no priority
    (tmp_path / "unrated.json").write_text(json.dumps(unrated))
    services.notices_import(str(tmp_path / "unrated.json"))
    cve = Cve.objects.get(pk="CVE-2022-48566")
    assert (cve.priority, cve.cvss) == ("", [])
    services.notices_import(str(OSV / "usn" / "USN-6400-1.json"))
    cve.refresh_from_db()
    assert cve.priority == "medium" and cve.priority_rank == 3
    assert cve.cvss == [{"type": "CVSS_V3", "vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"}]
    assert set(cve.notices.values_list("id", flat=True)) == {"USN-9996-1", "USN-6400-1"}
    unrated["modified"] = "2099-01-01T00:00:00Z"  # a revised unrated mention never lowers it
    (tmp_path / "unrated.json").write_text(json.dumps(unrated))
    assert services.notices_import(str(tmp_path / "unrated.json")).updated == 1
    cve.refresh_from_db()
    assert cve.priority == "medium"
