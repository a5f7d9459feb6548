from datetime import timedelta

import pytest
from django.utils import timezone

from uus.core.exceptions import Conflict, UusError
from uus.jobs import services
from uus.jobs.models import Job, Schedule
from uus.jobs.tasks import selftest
from uus.jobs.worker import Worker

pytestmark = pytest.mark.django_db


def test_dispatch_stores_a_queued_row():
    job = services.dispatch(selftest, kwargs={"steps": 2, "delay": 0})
    assert job.state == "queued" and job.name == "uus.jobs.tasks.selftest" and job.kwargs == {"steps": 2, "delay": 0}


def test_only_registered_jobs_can_be_dispatched():
    with pytest.raises(UusError, match="no job named"):
        services.dispatch("os.system", kwargs={"command": "true"})
    assert not Job.objects.exists()


def test_worker_runs_a_job_with_progress_log_and_result():
    job = services.dispatch(selftest, kwargs={"steps": 3, "delay": 0})
    assert Worker(poll=0).run_once()
    job.refresh_from_db()
    assert job.state == "succeeded"
    assert (job.progress_done, job.progress_total) == (3, 3)
    assert "step 3 of 3" in job.log
    assert job.result == {"steps": 3}
    assert job.started and job.finished and job.worker


def test_a_failing_job_is_recorded_not_raised():
    job = services.dispatch(selftest, kwargs={"steps": 1, "delay": 0, "fail": True})
    Worker(poll=0).run_once()
    job.refresh_from_db()
    assert job.state == "failed" and "asked to fail" in job.error


def test_bad_kwargs_fail_the_job_with_the_reason():
    job = services.dispatch(selftest, kwargs={"nonsense": 1})
    Worker(poll=0).run_once()
    job.refresh_from_db()
    assert job.state == "failed" and "nonsense" in job.error


def test_jobs_sharing_a_lock_never_run_together():
    first = services.dispatch(selftest, kwargs={"steps": 1, "delay": 0}, locks=["repo:production"])
    second = services.dispatch(selftest, kwargs={"steps": 1, "delay": 0}, locks=["repo:production"])
    other = services.dispatch(selftest, kwargs={"steps": 1, "delay": 0}, locks=["repo:test"])
    claimed = services.job_claim(worker="w1")
    assert claimed.pk == first.pk
    # while the first holds repo:production, the next claim skips the second and takes the third
    assert services.job_claim(worker="w2").pk == other.pk
    assert services.job_claim(worker="w3") is None
    services.job_run(claimed)
    assert services.job_claim(worker="w2").pk == second.pk


def test_cancel_a_queued_job_and_refuse_to_cancel_a_finished_one():
    job = services.dispatch(selftest, kwargs={"steps": 1, "delay": 0})
    job = services.job_cancel(job=job)
    assert job.state == "canceled"
    assert services.job_claim(worker="w") is None
    with pytest.raises(Conflict):
        services.job_cancel(job=job)


def test_a_running_job_stops_at_its_next_check_when_canceled():
    job = services.dispatch(selftest, kwargs={"steps": 5, "delay": 0})
    claimed = services.job_claim(worker="w")
    Job.objects.filter(pk=job.pk).update(is_cancel_requested=True)
    services.job_run(claimed)
    job.refresh_from_db()
    assert job.state == "canceled" and job.progress_done == 0


def test_a_job_whose_worker_died_goes_back_to_the_queue():
    job = services.dispatch(selftest, kwargs={"steps": 1, "delay": 0})
    services.job_claim(worker="dead-worker")
    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(minutes=10))
    assert services.jobs_requeue_lost() == 1
    job.refresh_from_db()
    assert job.state == "queued" and "lost; requeued" in job.log
    Worker(poll=0).run_once()
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2


def test_periodic_jobs_get_a_schedule_and_run_when_due():
    services.schedules_ensure()
    sched = Schedule.objects.get(name="uus.jobs.tasks.prune_jobs")
    assert sched.interval_seconds == 86400
    started = services.schedules_run_due()
    # every registered periodic job is due at once on a fresh database, each started exactly once
    names = [j.name for j in started]
    assert "uus.jobs.tasks.prune_jobs" in names and len(names) == len(set(names))
    assert services.schedules_run_due() == []  # next runs are in the future
    sched.refresh_from_db()
    assert sched.next_run > timezone.now() + timedelta(hours=23)


def test_job_run_inline_records_the_job_and_reports_progress():
    seen = []
    job = services.job_run_inline(
        selftest, kwargs={"steps": 2, "delay": 0}, on_progress=lambda d, t, m: seen.append((d, t))
    )
    assert job.state == "succeeded" and job.worker == "cli"
    assert (2, 2) in seen
