"""What a running job sees: progress, log and cancellation, saved to its row at a bounded rate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.utils import timezone

from uus.core.exceptions import UusError
from uus.core.logging import redact

from .models import Job

_SAVE_EVERY = 0.5  # seconds; progress of a 60,000-step job must not cost 60,000 UPDATEs


class JobCanceled(UusError):
    code = "job_canceled"


class JobContext:
    def __init__(self, job: Job, on_progress: Callable[[int, int | None, str], None] | None = None):
        self.job = job
        self._lines: list[str] = [job.log] if job.log else []
        self._dirty = False
        self._last_save = 0.0
        self._on_progress = on_progress
        self._lock = threading.Lock()

    # progress -------------------------------------------------------------------------------
    def set_total(self, total: int | None) -> None:
        self.job.progress_total = total
        self._changed()

    def advance(self, n: int = 1) -> None:
        self.job.progress_done += n
        self._changed()

    def set_done(self, done: int) -> None:
        self.job.progress_done = done
        self._changed()

    # log ------------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{timezone.now():%Y-%m-%d %H:%M:%S} {redact(message)}"
        with self._lock:
            self._lines.append(line)
        if self._on_progress:
            self._on_progress(self.job.progress_done, self.job.progress_total, message)
        self._changed()

    @property
    def log_text(self) -> str:
        return "\n".join(self._lines)

    # cancellation ---------------------------------------------------------------------------
    def check_cancel(self) -> None:
        if Job.objects.filter(pk=self.job.pk, is_cancel_requested=True).exists():
            raise JobCanceled("canceled on request")

    # saving ---------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty = True
        if self._on_progress:
            self._on_progress(self.job.progress_done, self.job.progress_total, "")
        if time.monotonic() - self._last_save >= _SAVE_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._last_save = time.monotonic()
        Job.objects.filter(pk=self.job.pk).update(
            progress_done=self.job.progress_done,
            progress_total=self.job.progress_total,
            log=self.log_text[-1_000_000:],
            heartbeat=timezone.now(),
        )


class JobLogHandler(logging.Handler):
    """Copies log records emitted by the job's thread into the job's log."""

    def __init__(self, ctx: JobContext):
        super().__init__(level=logging.INFO)
        self.ctx = ctx
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            try:
                self.ctx.log(f"{record.levelname.lower()}: {record.getMessage()}")
            except Exception:
                pass
