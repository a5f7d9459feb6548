"""The catalog's periodic jobs, run by the real job machinery (dispatch, claim, run): the upstream sync
schedule retries a failed sync on its next run while the admin sees the error and the previous catalog,
and the notices feed job imports from a configured URL served over loopback HTTP."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from uus.catalog import services, tasks
from uus.catalog.models import ArchivePackage, Notice, Upstream
from uus.jobs import registry
from uus.jobs.models import Job, Schedule
from uus.jobs.services import dispatch, job_claim, job_run, schedules_ensure
from uus.testing.fixtures import PASSWORD

from .loopback import serve_directory
from .test_services import KEYRING, OSV, _archive

pytestmark = pytest.mark.django_db


def run_jobs() -> list[Job]:
    done = []
    while (job := job_claim(worker="test")) is not None:
        job_run(job)
        done.append(Job.objects.get(pk=job.pk))
    return done


def test_both_jobs_are_scheduled():
    schedules_ensure()
    every = dict(Schedule.objects.values_list("job_name", "interval_seconds"))
    assert every["uus.catalog.tasks.upstreams_sync_due"] == 3600
    assert every["uus.catalog.tasks.notices_import_feed"] == 6 * 3600
    assert registry.get("uus.catalog.tasks.upstream_sync").every is None  # one sync: dispatched, not scheduled


def test_a_failed_scheduled_sync_is_shown_keeps_the_catalog_and_is_retried(
    tmp_path, settings, auditor_user, api_client_for
):
    root = _archive(tmp_path)
    inrelease = root / "dists/bookworm-updates/InRelease"
    good = inrelease.read_bytes()
    ui = Client()
    ui.login(username=auditor_user.username, password=PASSWORD)
    api = api_client_for(auditor_user)

    def hours_pass(hours: int) -> None:  # the schedule's interval goes by
        Upstream.objects.update(last_sync_started=timezone.now() - timedelta(hours=hours))

    with serve_directory(tmp_path / "www") as lb:
        services.upstream_add(
            name="debian",
            url=lb.url + "/debian",
            suites=["bookworm-updates"],
            components=["main"],
            architectures=["amd64"],
            keyring_data=KEYRING.read_bytes(),
        )
        dispatch(tasks.upstreams_sync_due)
        scheduler, sync = run_jobs()
        assert scheduler.result == {"queued": ["debian"]} and sync.state == "succeeded"
        assert ArchivePackage.objects.count() == 38

        # the mirror now serves a tampered InRelease; the next scheduled run fails
        inrelease.write_bytes(good.replace(b"Date: Mon, 23 Nov 2026", b"Date: Sat, 01 Jan 2000"))
        Upstream.objects.update(last_success=timezone.now() - timedelta(hours=7))
        hours_pass(settings.UUS["upstream_sync_minutes"] // 60 + 1)
        dispatch(tasks.upstreams_sync_due)
        scheduler, sync = run_jobs()
        assert scheduler.result == {"queued": ["debian"]}
        assert sync.state == "failed" and "BAD signature" in sync.error
        assert ArchivePackage.objects.count() == 38  # the previous catalog, whole

        page = ui.get("/upstreams/").content.decode()
        assert "Last sync failed" in page and "BAD signature" in page and "previous catalog is kept" in page
        assert "<td>38</td>" in page  # the index and its package count stay visible
        data = api.get("/api/v1/upstreams/debian/").json()
        assert "BAD signature" in data["last_error"] and data["last_error_at"]
        assert data["indexes"][0]["package_count"] == 38 and data["last_success"] < data["last_error_at"]
        assert api.get("/api/v1/archive-packages/?name=openssh-client").json()["count"] == 1

        dispatch(tasks.upstreams_sync_due)  # at once again: not due, not hammered
        (scheduler,) = run_jobs()
        assert scheduler.result == {"queued": []}

        inrelease.write_bytes(good)  # the mirror is repaired; the next scheduled run succeeds
        hours_pass(settings.UUS["upstream_sync_minutes"] // 60 + 1)
        dispatch(tasks.upstreams_sync_due)
        scheduler, sync = run_jobs()
        assert sync.state == "succeeded" and sync.result["indexes_unchanged"] == 1
    upstream = Upstream.objects.get()
    assert upstream.last_error == "" and upstream.last_success > upstream.last_error_at
    assert "Last sync failed" not in ui.get("/upstreams/").content.decode()


def _tarball(docs: dict[str, dict]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, doc in docs.items():
            data = json.dumps(doc).encode()
            info = tarfile.TarInfo(f"osv/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_the_feed_job_imports_from_the_configured_url(tmp_path, settings):
    docs = {str(p.relative_to(OSV)): json.loads(p.read_text()) for p in sorted(OSV.rglob("*.json"))}
    www = tmp_path / "www"
    www.mkdir()
    (www / "osv.tar.gz").write_bytes(_tarball(docs))
    with serve_directory(www) as lb:
        settings.UUS = {**settings.UUS, "notices_feed_url": lb.url + "/osv.tar.gz"}
        dispatch(tasks.notices_import_feed)
        (job,) = run_jobs()
        assert job.state == "succeeded", job.error
        assert (job.result["imported"], job.result["failed"]) == (len(docs), [])
        assert Notice.objects.count() == len(docs)

        dispatch(tasks.notices_import_feed)  # the next run: nothing new
        (job,) = run_jobs()
        assert (job.result["imported"], job.result["updated"], job.result["unchanged"]) == (0, 0, len(docs))

        # upstream revises one notice and publishes a broken file: the revision replaces, the break is named
        docs["usn/USN-6719-1.json"] = {**docs["usn/USN-6719-1.json"], "modified": "2099-01-01T00:00:00Z"}
        docs["usn/USN-6719-1.json"]["summary"] = "revised"
        docs["usn/USN-9999-1.json"] = {"id": "USN-9999-1"}
        (www / "osv.tar.gz").write_bytes(_tarball(docs))
        dispatch(tasks.notices_import_feed)
        (job,) = run_jobs()
    assert job.result["updated"] == 1 and Notice.objects.get(pk="USN-6719-1").summary == "revised"
    (failed,) = job.result["failed"]
    assert (
        failed["path"].endswith("osv.tar.gz:osv/usn/USN-9999-1.json")
        and failed["reason"] == "missing required field 'modified'"
    )
    assert "1 malformed" in job.log


def test_the_feed_job_without_a_url_does_nothing(settings):
    settings.UUS = {**settings.UUS, "notices_feed_url": ""}
    dispatch(tasks.notices_import_feed)
    (job,) = run_jobs()
    assert job.state == "succeeded" and job.result == {"skipped": True} and not Notice.objects.exists()


def test_an_unreachable_feed_fails_the_job_with_the_reason(tmp_path, settings):
    with serve_directory(tmp_path) as lb:
        settings.UUS = {**settings.UUS, "notices_feed_url": lb.url + "/missing.tar.gz"}
        dispatch(tasks.notices_import_feed)
        (job,) = run_jobs()
    assert job.state == "failed" and "HTTP 404" in job.error and not Notice.objects.exists()
