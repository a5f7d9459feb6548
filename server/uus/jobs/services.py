"""Dispatching, running and canceling jobs; the worker loop is in worker.py."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from uus.core.exceptions import Conflict, UusError

from . import registry
from .choices import JobState
from .context import JobCanceled, JobContext, JobLogHandler
from .models import Job, Schedule

log = logging.getLogger(__name__)

# Set by the in-process worker so that dispatch() wakes it at once instead of at the next poll.
wake_event: threading.Event | None = None


def _name_of(fn: Callable | str) -> str:
    return fn if isinstance(fn, str) else getattr(fn, "job_name", "")


def dispatch(
    fn: Callable | str,
    *,
    kwargs: dict | None = None,
    locks: list[str] | tuple = (),
    user=None,
    title: str | None = None,
    schedule: Schedule | None = None,
) -> Job:
    """Queue a @job function; the worker runs it. Returns the stored Job row."""
    spec = registry.get(_name_of(fn))
    job = Job.objects.create(
        name=spec.name,
        title=title or spec.title,
        kwargs=kwargs or {},
        locks=sorted(set(spec.locks) | set(locks)),
        created_by=user if user is not None and user.is_authenticated else None,
        created_by_name=getattr(user, "username", "") or "",
        schedule=schedule,
    )
    if wake_event is not None:
        transaction.on_commit(wake_event.set)
    return job


def job_cancel(*, job: Job) -> Job:
    if job.is_finished:
        raise Conflict(f"job {job.pk} has already finished ({job.state})")
    updated = Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
        state=JobState.CANCELED, finished=timezone.now(), is_cancel_requested=True
    )
    if not updated:
        Job.objects.filter(pk=job.pk).update(is_cancel_requested=True)
    job.refresh_from_db()
    return job


def _serialize_claims() -> None:
    """Claims must not interleave, or two jobs sharing a lock could both start. SQLite's IMMEDIATE
    transactions already serialize writers; PostgreSQL gets a transaction-scoped advisory lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(737373)")


def job_claim(*, worker: str) -> Job | None:
    """Take the oldest queued job whose locks are free, marking it running by `worker`."""
    with transaction.atomic():
        _serialize_claims()
        held: set[str] = set()
        for locks in Job.objects.filter(state=JobState.RUNNING).values_list("locks", flat=True):
            held.update(locks or [])
        now = timezone.now()
        for job in Job.objects.filter(state=JobState.QUEUED).order_by("created")[:50]:
            if held.intersection(job.locks or []):
                continue
            claimed = Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
                state=JobState.RUNNING, worker=worker, started=now, heartbeat=now, attempts=job.attempts + 1
            )
            if claimed:
                job.refresh_from_db()
                return job
    return None


def job_run(job: Job, *, on_progress: Callable | None = None) -> Job:
    """Run a claimed job to its end in this thread and store the outcome."""
    ctx = JobContext(job, on_progress=on_progress)
    handler = JobLogHandler(ctx)
    logging.getLogger("uus").addHandler(handler)
    stop_heartbeat = threading.Event()

    def beat():
        while not stop_heartbeat.wait(15):
            Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(heartbeat=timezone.now())
        connection.close()

    beater = threading.Thread(target=beat, daemon=True, name=f"heartbeat-{job.pk}")
    beater.start()
    try:
        spec = registry.get(job.name)
        result = spec.func(ctx, **job.kwargs)
        state, error = JobState.SUCCEEDED, ""
    except JobCanceled as exc:
        result, state, error = None, JobState.CANCELED, exc.message
        ctx.log("canceled")
    except UusError as exc:
        result, state, error = None, JobState.FAILED, exc.message
        ctx.log(f"failed: {exc.message}")
    except Exception as exc:  # a bug must fail the job, not the worker
        result, state, error = None, JobState.FAILED, f"{type(exc).__name__}: {exc}"
        ctx.log("failed with an internal error:\n" + traceback.format_exc())
        log.exception("job %s (%s) crashed", job.pk, job.name)
    finally:
        stop_heartbeat.set()
        logging.getLogger("uus").removeHandler(handler)
    if state == JobState.SUCCEEDED and job.progress_total and job.progress_done < job.progress_total:
        job.progress_done = job.progress_total
    job.state, job.result, job.error, job.finished = state, result, error, timezone.now()
    job.log = ctx.log_text[-1_000_000:]
    job.save(
        update_fields=["state", "result", "error", "finished", "log", "progress_done", "progress_total", "updated"]
    )
    return job


def job_run_inline(
    fn: Callable | str,
    *,
    kwargs: dict | None = None,
    locks=(),
    user=None,
    title=None,
    on_progress: Callable | None = None,
    worker: str = "cli",
) -> Job:
    """Run a job in this process now (CLI commands), still recorded as a Job row for the UI.
    Waits for conflicting locks held by running jobs rather than interleaving with them."""
    import time

    job = dispatch(fn, kwargs=kwargs, locks=locks, user=user, title=title)
    deadline = time.monotonic() + 3600
    while True:
        with transaction.atomic():
            _serialize_claims()
            held: set[str] = set()
            for lk in Job.objects.filter(state=JobState.RUNNING).values_list("locks", flat=True):
                held.update(lk or [])
            if not held.intersection(job.locks):
                now = timezone.now()
                if Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
                    state=JobState.RUNNING, worker=worker, started=now, heartbeat=now, attempts=1
                ):
                    break
                job.refresh_from_db()
                if job.state != JobState.QUEUED:  # a worker took it: wait for that run instead
                    return job_wait(job)
        if time.monotonic() > deadline:
            raise UusError(f"job {job.pk} waited an hour for its locks {job.locks}", code="lock_timeout")
        time.sleep(0.5)
    job.refresh_from_db()
    return job_run(job, on_progress=on_progress)


def job_wait(job: Job, timeout: float = 3600) -> Job:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.5)
    return job


def jobs_requeue_lost(*, older_than: timedelta = timedelta(seconds=90)) -> int:
    """Running jobs whose worker stopped beating go back to the queue (a restarted server resumes them)."""
    cutoff = timezone.now() - older_than
    lost = Job.objects.filter(state=JobState.RUNNING, heartbeat__lt=cutoff)
    n = 0
    for job in lost:
        n += Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(
            state=JobState.QUEUED,
            worker="",
            log=(job.log + f"\n{timezone.now():%Y-%m-%d %H:%M:%S} worker {job.worker} lost; requeued").strip(),
        )
    return n


def schedules_ensure() -> None:
    """Create a Schedule row for every periodic @job that has none (admins may disable them)."""
    registry.load_all()
    now = timezone.now()
    for spec in registry.REGISTRY.values():
        if spec.every:
            Schedule.objects.get_or_create(
                name=spec.name,
                defaults={"job_name": spec.name, "interval_seconds": spec.every, "next_run": now},
            )


def schedules_run_due() -> list[Job]:
    """Dispatch every enabled schedule whose time has come; a conditional update stops two workers
    from dispatching the same run."""
    now = timezone.now()
    started = []
    for sched in Schedule.objects.filter(is_enabled=True, next_run__lte=now):
        nxt = now + timedelta(seconds=sched.interval_seconds)
        with transaction.atomic():
            if not Schedule.objects.filter(pk=sched.pk, next_run=sched.next_run).update(next_run=nxt):
                continue
            if (
                sched.last_job_id
                and Job.objects.filter(pk=sched.last_job_id, state__in=[JobState.QUEUED, JobState.RUNNING]).exists()
            ):
                continue  # the previous run is still going; don't pile up
            job = dispatch(sched.job_name, kwargs=sched.kwargs, schedule=sched)
            Schedule.objects.filter(pk=sched.pk).update(last_job=job)
            started.append(job)
    return started
