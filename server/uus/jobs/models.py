from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from uus.core.models import TimeStampedModel

from .choices import FINISHED_STATES, JobState


class Job(TimeStampedModel):
    """One unit of background work: a registered @job function by dotted name, with JSON kwargs.

    State machine:
        queued --claim--> running --return--> succeeded
                                  --raise---> failed
        queued --cancel--> canceled
        running --cancel--> (is_cancel_requested; the job stops at its next check) --> canceled
        running --worker lost (no heartbeat)--> queued again (attempts + 1)

    `locks` are names; two jobs sharing a lock never run at the same time (a publish of one ring,
    a sync of one upstream). The same row serves the in-process worker, `uus worker` processes and
    CLI commands that run a job inline with a progress bar.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, help_text="dotted path of the @job function")
    title = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    locks = models.JSONField(default=list, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    log = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    is_cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    schedule = models.ForeignKey("Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["state", "created"])]

    def __str__(self) -> str:
        return f"{self.title} [{self.state}]"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return 100 if self.state == JobState.SUCCEEDED else None
        return min(100, int(100 * self.progress_done / self.progress_total))


class Schedule(TimeStampedModel):
    """A periodic job. Rows are created from `@job(every=...)` declarations and can be disabled."""

    name = models.CharField(max_length=200, unique=True)
    job_name = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict, blank=True)
    interval_seconds = models.PositiveIntegerField()
    next_run = models.DateTimeField(db_index=True)
    is_enabled = models.BooleanField(default=True)
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
