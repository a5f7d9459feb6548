"""Deployments (what to do on which machines, when), their per-machine jobs run by the agent, and
maintenance windows. All state is in these rows: a restarted server carries on from them."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from uus.core.models import TimeStampedModel

from .choices import DeploymentAction, DeploymentState, MachineJobState

MACHINE_TIME_ZONE = "machine"  # a window's time zone that means "each machine's own"


class MaintenanceWindow(TimeStampedModel):
    """A weekly recurring window in a named time zone, or in each machine's own (`machine`: the zone
    its agent reports, UTC when unknown): on `weekdays` (0 = Monday), from `start` for
    `duration_minutes` (a window may run past midnight)."""

    name = models.SlugField(max_length=64, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, or 'machine'")
    weekdays = models.JSONField(default=list, help_text="0 = Monday ... 6 = Sunday")
    start = models.TimeField()
    duration_minutes = models.PositiveIntegerField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_per_machine(self) -> bool:
        return self.timezone == MACHINE_TIME_ZONE

    def is_open(self, at: datetime, machine_time_zone: str = "") -> bool:
        """Whether the window is open at `at`; for a per-machine window, in `machine_time_zone`."""
        zone = (machine_time_zone or "UTC") if self.is_per_machine else self.timezone
        local = at.astimezone(zoneinfo.ZoneInfo(zone))
        for days_back in (0, 1, 2, 3, 4, 5, 6, 7):  # a window that began on an earlier day may still run
            day = (local - timedelta(days=days_back)).date()
            if day.weekday() not in self.weekdays:
                continue
            begin = datetime.combine(day, self.start, tzinfo=local.tzinfo)
            if begin <= local < begin + timedelta(minutes=self.duration_minutes):
                return True
        return False


class Deployment(TimeStampedModel):
    """What to do on a target's machines. See choices for the actions and the states."""

    target = models.CharField(
        max_length=600, help_text="ring:NAME, group:NAME, ou:DN or machine:HOSTNAME[,HOSTNAME...]"
    )
    action = models.CharField(max_length=20, choices=DeploymentAction.choices)
    packages = models.JSONField(default=list, blank=True, help_text='"name" or "name=version"')
    ring = models.ForeignKey(
        "approvals.Ring",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="whose approvals install_approved installs; empty: each machine's own ring",
    )
    state = models.CharField(max_length=16, choices=DeploymentState.choices, default=DeploymentState.SCHEDULED)
    start_at = models.DateTimeField()
    deadline = models.DateTimeField(null=True, blank=True, help_text="after this, run even outside the window")
    window = models.ForeignKey(MaintenanceWindow, null=True, blank=True, on_delete=models.PROTECT)
    batch_size = models.PositiveIntegerField(default=0, help_text="machines at once; 0: all")
    failure_threshold = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="halt when this percentage of finished jobs failed"
    )
    job_timeout_minutes = models.PositiveIntegerField(default=24 * 60)
    rollback_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks")
    comment = models.TextField(blank=True, default="")
    halted_reason = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["state", "start_at"], name="deployment_state_start")]

    def __str__(self) -> str:
        return f"deployment {self.pk} {self.action} {self.target}"


class MachineJob(TimeStampedModel):
    """One job of one deployment on one machine; its `id` is the job id of the agent protocol.
    The first result stored wins (results are idempotent by job id)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="jobs")
    machine = models.ForeignKey("inventory.Machine", on_delete=models.CASCADE, related_name="deployment_jobs")
    type = models.CharField(max_length=32, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=MachineJobState.choices, default=MachineJobState.WAITING)
    deadline = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveIntegerField(default=0)
    result_received = models.DateTimeField(null=True, blank=True)
    result_status = models.CharField(max_length=16, blank=True, default="")
    error = models.CharField(max_length=64, blank=True, default="")
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    package_changes = models.JSONField(default=list, blank=True, help_text="[{name, architecture, before, after}]")
    is_reboot_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["deployment", "machine__hostname"]
        constraints = [models.UniqueConstraint(fields=["deployment", "machine"], name="uniq_deployment_machine")]
        indexes = [
            models.Index(fields=["machine", "state"], name="machinejob_machine_state"),
            models.Index(fields=["deployment", "state"], name="machinejob_deployment_state"),
        ]

    def __str__(self) -> str:
        return f"{self.type} on {self.machine_id} [{self.state}]"


class NotifiedUpdate(models.Model):
    """A security update already announced by a notification, so that it is announced once."""

    name = models.CharField(max_length=200)
    version = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="uniq_notified_update")]
