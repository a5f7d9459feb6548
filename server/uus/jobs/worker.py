"""The worker loop: shared by the in-process worker thread of `uus serve` and `uus worker` processes."""

from __future__ import annotations

import logging
import os
import socket
import threading

from django.conf import settings
from django.db import close_old_connections, connection

from . import services

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, name: str | None = None, *, poll: float | None = None, run_schedules: bool = True):
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll = poll if poll is not None else settings.UUS["worker_poll_seconds"]
        self.run_schedules = run_schedules
        self.stop = threading.Event()
        self.wake = threading.Event()

    def run_once(self) -> bool:
        """One pass: requeue lost jobs, start due schedules, run one job. True if a job ran."""
        if not connection.in_atomic_block:  # tests run the worker inside their transaction
            close_old_connections()
        services.jobs_requeue_lost()
        if self.run_schedules:
            services.schedules_run_due()
        job = services.job_claim(worker=self.name)
        if job is None:
            return False
        log.info("running job %s (%s)", job.pk, job.name)
        services.job_run(job)
        return True

    def run_forever(self) -> None:
        services.schedules_ensure()
        log.info("worker %s started", self.name)
        while not self.stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the database may be away for a moment; never let the loop die
                log.exception("worker pass failed")
                ran = False
            if not ran:
                self.wake.wait(self.poll)
                self.wake.clear()
        connection.close()


def start_inprocess_worker() -> Worker:
    """The embedded default: one worker thread inside `uus serve`."""
    worker = Worker(name=f"{socket.gethostname()}:{os.getpid()}:inprocess")
    services.wake_event = worker.wake
    thread = threading.Thread(target=worker.run_forever, name="uus-worker", daemon=True)
    thread.start()
    return worker
