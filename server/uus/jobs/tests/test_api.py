"""A job dispatched through the API runs in the embedded default (the in-process worker thread) and
in a separate `uus worker` process, and shows its progress and log."""

import time

import pytest

from uus.jobs.models import Job


def _wait(job_id, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {Job.objects.get(pk=job_id).state}")


@pytest.mark.django_db(transaction=True)
def test_api_dispatch_runs_in_the_inprocess_worker(admin_user, api_client_for):
    from uus.jobs import services
    from uus.jobs.worker import start_inprocess_worker

    worker = start_inprocess_worker()
    try:
        client = api_client_for(admin_user)
        r = client.post(
            "/api/v1/jobs/", {"name": "uus.jobs.tasks.selftest", "kwargs": {"steps": 4, "delay": 0.05}}, format="json"
        )
        assert r.status_code == 202, r.content
        assert r.json()["job"].endswith(f"/api/v1/jobs/{r.json()['id']}/")
        job = _wait(r.json()["id"])
        assert job.state == "succeeded"
        detail = client.get(f"/api/v1/jobs/{job.pk}/").json()
        assert detail["progress_done"] == 4 and detail["progress_total"] == 4 and detail["percent"] == 100
        assert "step 4 of 4" in detail["log"]
        assert detail["worker"].endswith(":inprocess")
    finally:
        worker.stop.set()
        worker.wake.set()
        services.wake_event = None


@pytest.mark.system
def test_api_dispatch_runs_in_a_uus_worker_process(admin_user, api_client_for, uus_cli):
    client = api_client_for(admin_user)
    r = client.post(
        "/api/v1/jobs/", {"name": "uus.jobs.tasks.selftest", "kwargs": {"steps": 3, "delay": 0}}, format="json"
    )
    assert r.status_code == 202
    done = uus_cli("worker", "--once", env={"UUS_TASK_BACKEND": "db"})
    assert done.returncode == 0, done.stderr
    job = Job.objects.get(pk=r.json()["id"])
    assert job.state == "succeeded" and "step 3 of 3" in job.log
    assert ":inprocess" not in job.worker


@pytest.mark.django_db
def test_malformed_json_gets_a_clear_error_and_changes_nothing(admin_user, api_client_for):
    client = api_client_for(admin_user)
    r = client.generic("POST", "/api/v1/jobs/", "{not json", content_type="application/json")
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["code"] == "malformed_request" and "parsed" in body["error"]["message"]
    r = client.post("/api/v1/jobs/", {"name": "no.such.job"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_job"
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_cancel_through_the_api(operator_user, api_client_for):
    from uus.jobs.services import dispatch

    job = dispatch("uus.jobs.tasks.selftest", kwargs={"steps": 1})
    r = api_client_for(operator_user).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert r.status_code == 200 and r.json()["state"] == "canceled"
    r = api_client_for(operator_user).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
