"""Services of the repos app against a real data directory, real gpg and the real HTTP views."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from uus.approvals.models import Ring
from uus.catalog.models import ArchivePackage, Upstream, UpstreamIndex
from uus.catalog.tests.loopback import serve_directory
from uus.core.debversion import version_key
from uus.core.exceptions import Conflict
from uus.jobs.models import Job
from uus.repos import services, tasks
from uus.repos.debfile import InvalidPackage
from uus.repos.models import CachedFile, PrivatePackage

from .debs import COWSAY, HELLO, SL, ar_archive, ar_members, hello_control, replace_field, with_control

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "d"
    settings.DATA_DIR.mkdir()
    settings.UUS = {**settings.UUS, "upload_max_mb": 5, "base_url": "", "cache_max_mb": 0}
    yield settings.DATA_DIR
    from uus.repos.signing import signing_agent_stop

    if (settings.DATA_DIR / "gnupg").exists():
        signing_agent_stop(services.gnupg_home())


def pool_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "pool").rglob("*") if p.is_file() and ".fetch" not in p.parts]


def leftovers(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file()]


def publish_jobs() -> list[str]:
    return sorted(j.kwargs["ring"] for j in Job.objects.filter(name=tasks.repo_publish.job_name))


# --------------------------------------------------------------------------- uploads


def test_upload_records_stores_once_and_queues_one_publish_per_ring(data_dir, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        row, created = services.package_upload(path=HELLO)
    assert created and row.name == "hello" and row.version == "2.10-3" and row.architecture == "amd64"
    assert row.sha256 == hashlib.sha256(HELLO.read_bytes()).hexdigest()
    assert row.filename == "pool/local/main/h/hello/hello_2.10-3_amd64.deb"
    assert [p.read_bytes() for p in pool_files(data_dir)] == [HELLO.read_bytes()]
    assert publish_jobs() == sorted(Ring.objects.values_list("name", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        again, created = services.package_upload(path=HELLO)
        services.package_upload(path=COWSAY)
    assert not created and again.pk == row.pk
    assert PrivatePackage.objects.count() == 2 and len(pool_files(data_dir)) == 2
    # publishes still queued (not started) cover the new upload: no second job per ring
    assert publish_jobs() == sorted(Ring.objects.values_list("name", flat=True))


def test_other_content_under_the_same_name_version_arch_is_refused(data_dir, tmp_path):
    services.package_upload(path=HELLO, publish=False)
    rebuilt = tmp_path / "hello-rebuilt.deb"
    rebuilt.write_bytes(with_control(hello_control(), kind="gz"))
    with pytest.raises(Conflict, match="already uploaded with other content"):
        services.package_upload(path=rebuilt, publish=False)
    assert PrivatePackage.objects.count() == 1 and len(pool_files(data_dir)) == 1


def _claims_2gb() -> bytes:
    """A data member header claiming 2 GB in a 30 KB file."""
    data = bytearray(HELLO.read_bytes())
    pos = 8
    for _ in range(2):  # skip debian-binary and control.tar.*
        size = int(data[pos + 48 : pos + 58])
        pos += 60 + size + (size & 1)
    data[pos + 48 : pos + 58] = b"2147483648"
    return bytes(data)


def _bad_uploads():
    hello = HELLO.read_bytes()
    members = ar_members(hello)
    return [
        ("truncated", SL.read_bytes()[:9000], "truncated"),
        ("not ar", b"#!/bin/sh\nrm -rf /\n" * 50, "not an ar archive"),
        ("no Version", with_control(replace_field(hello_control(), "Version", None)), "lacks Version"),
        ("bad name", with_control(replace_field(hello_control(), "Package", "Hello_World")), "invalid package name"),
        ("member ../x", ar_archive([members[0], ("../x", b"x"), *members[1:]]), "is not allowed"),
        ("2 GB claim", _claims_2gb(), "truncated"),
    ]


@pytest.mark.parametrize(("what", "data", "message"), _bad_uploads(), ids=[b[0] for b in _bad_uploads()])
def test_malformed_uploads_are_refused_and_leave_nothing(data_dir, tmp_path, what, data, message):
    bad = tmp_path / "upload.deb"
    bad.write_bytes(data)
    with pytest.raises(InvalidPackage, match=message):
        services.package_upload(path=bad)
    assert PrivatePackage.objects.count() == 0
    assert leftovers(data_dir) == []
    assert Job.objects.count() == 0


def test_upload_over_the_size_limit_is_refused(data_dir, settings):
    settings.UUS = {**settings.UUS, "upload_max_mb": 0}
    with pytest.raises(InvalidPackage, match="limit|larger"):
        services.package_upload(path=HELLO)
    assert leftovers(data_dir) == []


# --------------------------------------------------------------------------- publish and serve


@pytest.fixture
def published(data_dir):
    services.package_upload(path=HELLO, publish=False)
    services.package_upload(path=COWSAY, publish=False)
    repo = services.repo_publish(ring=Ring.objects.get(name="production"))
    return repo


def test_publish_records_suites_and_the_key_is_private(published, data_dir):
    assert published.package_count == 2
    assert [s["suite"] for s in published.suites] == ["uus-local"]
    assert published.fingerprint and len(published.fingerprint) == 40
    home = data_dir / "gnupg"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for p in home.rglob("*"):
        if p.is_file() and not p.name.startswith("S."):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert services.key_asc_path().read_bytes().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_repo_views_serve_indexes_pool_ranges_and_conditional_gets(published, client):
    base = "/repo/production"
    inrelease = client.get(f"{base}/dists/uus-local/InRelease")
    assert inrelease.status_code == 200 and b"BEGIN PGP SIGNED MESSAGE" in b"".join(inrelease.streaming_content)
    pool = f"{base}/pool/local/main/h/hello/hello_2.10-3_amd64.deb"
    whole = client.get(pool)
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == HELLO.read_bytes()
    assert client.get(pool.replace("+", "%2b")).status_code == 200
    part = client.get(pool, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{HELLO.stat().st_size}"
    assert b"".join(part.streaming_content) == HELLO.read_bytes()[100:200]
    tail = client.get(pool, HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == HELLO.read_bytes()[-10:]
    assert client.get(pool, HTTP_RANGE=f"bytes={HELLO.stat().st_size}-").status_code == 416
    assert client.get(pool, HTTP_IF_NONE_MATCH=whole["ETag"]).status_code == 304
    assert client.get(pool, HTTP_IF_MODIFIED_SINCE=whole["Last-Modified"]).status_code == 304
    cows = client.get(f"{base}/pool/local/main/c/cowsay/cowsay_3.03%2bdfsg2-8_all.deb")
    assert b"".join(cows.streaming_content) == COWSAY.read_bytes()
    for missing in (
        f"{base}/pool/local/main/s/sl/sl_5.02-1+b1_amd64.deb",  # never uploaded
        f"{base}/.uus/pool-map-uus-local.tsv",
        f"{base}/dists/../../key.asc",
        "/repo/no-such-ring/dists/uus-local/InRelease",
    ):
        assert client.get(missing).status_code == 404, missing
    key = client.get("/repo/key.asc")
    assert key.status_code == 200 and key.content.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_removed_package_stays_served_until_no_generation_names_it(published, data_dir):
    hello = PrivatePackage.objects.get(name="hello")
    stored = pool_files(data_dir)
    services.package_remove(package=hello, publish=False)
    ring = Ring.objects.get(name="production")
    services.repo_publish(ring=ring)  # the previous generation (kept for clients in flight) names it
    old = time.time() - 7200
    for p in stored:
        os.utime(p, (old, old))
    assert services.cache_evict()["removed"] == 0
    assert services.pool_serve("production", hello.filename) is not None
    services.repo_publish(ring=ring)  # now no generation on disk names it
    assert services.cache_evict()["removed"] == 1
    assert services.pool_serve("production", hello.filename) is None
    assert services.pool_serve("production", "pool/local/main/c/cowsay/cowsay_3.03+dfsg2-8_all.deb")


def test_apt_for_machine_names_every_published_suite(published, settings):
    from uus.agentapi.services import apt_for_machine
    from uus.inventory.tests.factories import machine_make

    machine = machine_make()
    settings.UUS = {**settings.UUS, "base_url": "https://uus.example.org/"}
    apt = apt_for_machine(machine)
    assert apt == {
        "sources": "deb [signed-by=/etc/apt/keyrings/uus.gpg] https://uus.example.org/repo/production uus-local main\n",
        "key_url": "https://uus.example.org/repo/key.asc",
    }
    test_ring = Ring.objects.get(name="test")
    from uus.approvals.models import RingMembership

    RingMembership.objects.create(machine=machine, ring=test_ring)
    assert apt_for_machine(machine) is None  # the test ring is not published yet


def test_apt_lines_use_the_address_the_agent_reached_without_base_url(published):
    from uus.repos.receivers import on_request_started

    on_request_started(sender=None, environ={"HTTP_HOST": "10.1.2.3:8000", "wsgi.url_scheme": "http"})
    try:
        apt = services.apt_sources_for_ring(Ring.objects.get(name="production"), services.public_base_url())
    finally:
        services.request_base_url_set(None)
    assert "http://10.1.2.3:8000/repo/production uus-local main" in apt["sources"]


# --------------------------------------------------------------------------- pull-through cache


@pytest.fixture
def upstream_file(data_dir, tmp_path):
    """A catalog entry for sl, served by a loopback upstream; returns (loopback, sha256, size)."""
    www = tmp_path / "www"
    (www / "pool/main/s/sl").mkdir(parents=True)
    target = www / "pool/main/s/sl/sl_5.02-1+b1_amd64.deb"
    target.write_bytes(SL.read_bytes())
    with serve_directory(www) as lb:
        upstream = Upstream.objects.create(
            name="deb", url=lb.url, suites=["bookworm"], components=["main"], architectures=["amd64"], keyring="/x"
        )
        index = UpstreamIndex.objects.create(
            upstream=upstream, suite="bookworm", codename="bookworm", pocket="release", component="main",
            architecture="amd64",
        )  # fmt: skip
        sha = hashlib.sha256(SL.read_bytes()).hexdigest()
        ArchivePackage.objects.create(
            index=index, name="sl", version="5.02-1+b1", version_key=version_key("5.02-1+b1"), architecture="amd64",
            source="sl", source_version="5.02-1", source_version_key=version_key("5.02-1"), size=SL.stat().st_size,
            sha256=sha, filename="pool/main/s/sl/sl_5.02-1+b1_amd64.deb",
        )  # fmt: skip
        yield lb, target, sha, SL.stat().st_size


@pytest.mark.django_db(transaction=True)
def test_concurrent_misses_fetch_once_and_verify(upstream_file, data_dir):
    lb, _target, sha, size = upstream_file
    results, errors = [], []

    def fetch():
        try:
            results.append(services.pool_fetch(sha, size).read_bytes())
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6 and set(results) == {SL.read_bytes()}
    assert lb.requests.count("/pool/main/s/sl/sl_5.02-1%2Bb1_amd64.deb") == 1, lb.requests
    stats = services.cache_stats()
    assert (stats["misses"], stats["bytes_fetched"], stats["files"]) == (1, size, 1)


def test_a_bad_download_is_discarded_and_never_served(upstream_file, data_dir):
    lb, target, sha, size = upstream_file
    target.write_bytes(SL.read_bytes()[:-1] + b"X")  # same size, other bytes
    with pytest.raises(services.UpstreamFetchFailed, match="SHA-256"):
        services.pool_fetch(sha, size)
    lb.lie_length["/pool/main/s/sl/sl_5.02-1%2Bb1_amd64.deb"] = size  # a cut transfer
    target.write_bytes(SL.read_bytes())
    with pytest.raises(services.UpstreamFetchFailed):
        services.pool_fetch(sha, size)
    assert pool_files(data_dir) == [] and CachedFile.objects.count() == 0
    del lb.lie_length["/pool/main/s/sl/sl_5.02-1%2Bb1_amd64.deb"]
    assert services.pool_fetch(sha, size).read_bytes() == SL.read_bytes()


def test_eviction_removes_least_recently_used_unreferenced_files(data_dir):
    from datetime import timedelta

    from django.utils import timezone

    from uus.repos.pool import pool_file

    now = timezone.now()
    shas = []
    for i in range(4):
        content = f"cached file {i}".encode() * 100
        sha = hashlib.sha256(content).hexdigest()
        path = pool_file(services.pool_root(), sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        CachedFile.objects.create(sha256=sha, size=len(content), last_access=now - timedelta(hours=10 - i))
        shas.append((sha, len(content)))
    # the oldest is still named by a published repository: it stays, the next oldest goes
    gen = services.repos_root() / ".gen-production-20260101T000000.000000-abcdefgh" / ".uus"
    gen.mkdir(parents=True)
    (gen / "pool-map-bookworm.tsv").write_text(f"pool/up/deb/x.deb\t{shas[0][0]}\t{shas[0][1]}\n")
    result = services.cache_evict(max_bytes=shas[0][1] * 3)
    assert result["evicted"] == 1
    remaining = set(CachedFile.objects.values_list("sha256", flat=True))
    assert remaining == {shas[0][0], shas[2][0], shas[3][0]}
    assert not pool_file(services.pool_root(), shas[1][0]).exists()
    assert services.cache_stats()["evicted"] == 1


def test_bulk_upload_reports_each_file_and_stores_only_the_good_ones(data_dir, tmp_path):
    truncated = tmp_path / "truncated.deb"
    truncated.write_bytes(SL.read_bytes()[:9000])
    rebuilt = tmp_path / "hello-rebuilt.deb"
    rebuilt.write_bytes(with_control(hello_control(), kind="gz"))
    services.package_upload(path=COWSAY, publish=False)
    outcomes = services.packages_upload_many(paths=[HELLO, truncated, COWSAY, HELLO, rebuilt, SL])
    summary = [(Path(o.path).name, o.package.name if o.package else None, o.created, bool(o.error)) for o in outcomes]
    assert summary == [
        ("hello_2.10-3_amd64.deb", "hello", True, False),
        ("truncated.deb", None, False, True),
        ("cowsay_3.03+dfsg2-8_all.deb", "cowsay", False, False),
        ("hello_2.10-3_amd64.deb", "hello", False, False),
        ("hello-rebuilt.deb", None, False, True),
        ("sl_5.02-1+b1_amd64.deb", "sl", True, False),
    ]
    assert "truncated" in outcomes[1].error and "other content" in outcomes[4].error
    assert sorted(PrivatePackage.objects.values_list("name", flat=True)) == ["cowsay", "hello", "sl"]
    assert sorted(p.read_bytes() for p in pool_files(data_dir)) == sorted(d.read_bytes() for d in (COWSAY, HELLO, SL))


def test_moved_files_are_hard_linked_into_the_pool_and_removed(data_dir, tmp_path):
    """--move hands the files over: no copy (the pool keeps the inode), the name is removed once
    stored; a refused file stays where it was; a file with another name is copied, not linked."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for deb in (HELLO, SL):
        (incoming / deb.name).write_bytes(deb.read_bytes())
    hello_inode = (incoming / HELLO.name).stat().st_ino
    (incoming / "broken.deb").write_bytes(SL.read_bytes()[:9000])
    (incoming / COWSAY.name).write_bytes(COWSAY.read_bytes())
    os.link(incoming / COWSAY.name, tmp_path / "kept-elsewhere.deb")  # a second name: must be copied
    paths = sorted(incoming.iterdir())
    outcomes = {Path(o.path).name: o for o in services.packages_upload_many(paths=paths, move=True)}
    assert {n for n, o in outcomes.items() if o.created} == {HELLO.name, SL.name, COWSAY.name}
    assert "truncated" in outcomes["broken.deb"].error
    assert sorted(p.name for p in incoming.iterdir()) == ["broken.deb"]
    hello = PrivatePackage.objects.get(name="hello")
    stored = services.pool_root() / "by-sha256" / hello.sha256[:2] / hello.sha256[2:]
    assert stored.stat().st_ino == hello_inode and stored.stat().st_nlink == 1
    cowsay = PrivatePackage.objects.get(name="cowsay")
    stored = services.pool_root() / "by-sha256" / cowsay.sha256[:2] / cowsay.sha256[2:]
    assert stored.stat().st_ino != (tmp_path / "kept-elsewhere.deb").stat().st_ino
    assert stored.read_bytes() == COWSAY.read_bytes()
    assert sorted(p.read_bytes() for p in pool_files(data_dir)) == sorted(d.read_bytes() for d in (COWSAY, HELLO, SL))


def test_a_large_batch_is_checked_in_worker_processes_alike(data_dir, tmp_path, monkeypatch):
    """The worker processes check exactly as this process does: good files stored, each refusal
    with its own reason, nothing left of the refused ones."""
    monkeypatch.setattr(services, "PARALLEL_MIN_FILES", 2)
    bad_depends = tmp_path / "bad-depends.deb"
    bad_depends.write_bytes(with_control(replace_field(hello_control(), "Depends", "libc6 (>= 2.34")))
    not_ar = tmp_path / "not-ar.deb"
    not_ar.write_bytes(b"#!/bin/sh\n" * 20)
    paths = [HELLO, bad_depends, COWSAY, not_ar, SL]
    outcomes = services.packages_upload_many(paths=paths, publish=False)
    assert [(o.created, o.error.split(":")[0] if o.error else "") for o in outcomes] == [
        (True, ""),
        (False, "dpkg refuses the control file"),
        (True, ""),
        (False, "not a Debian package"),
        (True, ""),
    ]
    assert sorted(PrivatePackage.objects.values_list("name", flat=True)) == ["cowsay", "hello", "sl"]
    assert not list((services.pool_root() / services.INCOMING_DIR).iterdir())


def test_api_upload_of_several_files_answers_per_file(data_dir, api_client_for, operator_user):
    client = api_client_for(operator_user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    one = client.post(
        "/api/v1/packages/",
        {"file": SimpleUploadedFile("hello.deb", HELLO.read_bytes())},
        format="multipart",
    )
    assert one.status_code == 201 and one.json()["name"] == "hello"  # one file: the package, as before
    files = [
        SimpleUploadedFile("hello.deb", HELLO.read_bytes()),
        SimpleUploadedFile("../../etc/passwd", SL.read_bytes()[:9000]),
        SimpleUploadedFile("sl.deb", SL.read_bytes()),
    ]
    many = client.post("/api/v1/packages/", {"file": files}, format="multipart")
    assert many.status_code == 200, many.content
    results = many.json()
    assert [(r["file"], r["created"], (r["package"] or {}).get("name")) for r in results] == [
        ("hello.deb", False, "hello"),
        ("passwd", False, None),  # Django keeps only the base name of a client's file name
        ("sl.deb", True, "sl"),
    ]
    assert results[1]["error"]["code"] == "invalid_package" and "truncated" in results[1]["error"]["message"]
    assert sorted(PrivatePackage.objects.values_list("name", flat=True)) == ["hello", "sl"]
    assert not [p for p in data_dir.iterdir() if p.name.startswith("upload-")]  # the spool is gone


def test_packages_page_says_where_each_upload_is_installed(data_dir, client, operator_user):
    from uus.inventory.tests.factories import entries, entry, machine_make
    from uus.repos.selectors import private_package_installs

    hello, _ = services.package_upload(path=HELLO, publish=False)
    sl, _ = services.package_upload(path=SL, publish=False)
    cowsay, _ = services.package_upload(path=COWSAY, publish=False)
    base = [entry("libc6", "2.36-9+deb12u13")]
    machine_make("web-1", packages=entries(*base, entry("hello", "2.10-3")), release="12")
    machine_make("web-2", packages=entries(*base, entry("hello", "2.10-3"), entry("sl", "5.02-1")), release="12")
    machine_make("web-3", packages=entries(*base, entry("hello", "2.10-3", status="config-files")), release="12")
    revoked = machine_make("old-1", packages=entries(*base, entry("hello", "2.10-3")), release="12")
    revoked.is_revoked = True
    revoked.save()
    installs = private_package_installs([hello, sl, cowsay])
    assert (installs[hello.pk].machines, installs[hello.pk].hostnames) == (2, ["web-1", "web-2"])
    assert installs[sl.pk].machines == 0  # web-2 has another version of sl
    assert installs[cowsay.pk].machines == 0

    client.force_login(operator_user)
    page = client.get("/packages/").content.decode()
    assert 'installed on <a href="/machines/?package=hello&amp;version=2.10-3">2 machines</a>: web-1, web-2' in page
    assert page.count("installed nowhere yet") == 2


def test_the_daily_renewal_re_signs_every_ring_before_valid_until(data_dir, settings):
    from email.utils import parsedate_to_datetime

    from django.utils import timezone

    from uus.jobs.models import Schedule
    from uus.jobs.services import job_run_inline, schedules_ensure

    def valid_until(ring: str):
        release = (services.ring_root(ring) / "dists/uus-local/Release").read_text()
        line = next(x for x in release.splitlines() if x.startswith("Valid-Until: "))
        return parsedate_to_datetime(line.split(": ", 1)[1].replace("UTC", "+0000"))

    services.package_upload(path=HELLO, publish=False)
    settings.UUS = {**settings.UUS, "repo_valid_days": 1}
    for ring in Ring.objects.all():
        services.repo_publish(ring=ring)
    first = valid_until("production")
    assert timedelta(hours=23) < first - timezone.now() <= timedelta(days=1)
    packages = services.ring_root("production") / "dists/uus-local/main/binary-amd64/Packages.xz"
    before = packages.stat().st_ino

    settings.UUS = {**settings.UUS, "repo_valid_days": 7}
    schedules_ensure()
    schedule = Schedule.objects.get(job_name=tasks.repos_renew.job_name)
    assert schedule.is_enabled and schedule.interval_seconds < settings.UUS["repo_valid_days"] * 86400 / 2
    renew = job_run_inline(tasks.repos_renew)
    assert renew.state == "succeeded" and len(renew.result["queued"]) == Ring.objects.count()
    for job in Job.objects.filter(pk__in=renew.result["queued"]):
        assert job_run_inline(tasks.repo_publish, kwargs=job.kwargs).state == "succeeded"
    for ring in Ring.objects.values_list("name", flat=True):
        assert timedelta(days=6, hours=23) < valid_until(ring) - timezone.now() <= timedelta(days=7)
    # nothing else changed: the compressed index is the previous generation's file, re-signed only
    assert (services.ring_root("production") / "dists/uus-local/main/binary-amd64/Packages.xz").stat().st_ino == before


def test_a_front_server_is_told_which_stored_file_to_send(published, client):
    """With X-UUS-Accel-Pool (set by nginx, docs/deploy-nginx.md) UUS resolves the pool path (ring
    visibility, pull-through) and names the stored file; nginx then sends it from disk itself."""
    pool = "/repo/production/pool/local/main/h/hello/hello_2.10-3_amd64.deb"
    sha = hashlib.sha256(HELLO.read_bytes()).hexdigest()
    resp = client.get(pool, HTTP_X_UUS_ACCEL_POOL="/_uus_pool/")
    assert resp.status_code == 200 and resp.content == b""
    assert resp["X-Accel-Redirect"] == f"/_uus_pool/by-sha256/{sha[:2]}/{sha[2:]}"
    assert resp["Content-Type"] == "application/vnd.debian.binary-package"
    for odd in ("/_uus_pool/../../etc/", "_uus_pool/", "/x y/"):  # not a location: the file itself
        plain = client.get(pool, HTTP_X_UUS_ACCEL_POOL=odd)
        assert "X-Accel-Redirect" not in plain and b"".join(plain.streaming_content) == HELLO.read_bytes()
    missing = "/repo/production/pool/local/main/s/sl/sl_5.02-1+b1_amd64.deb"
    assert client.get(missing, HTTP_X_UUS_ACCEL_POOL="/_uus_pool/").status_code == 404
