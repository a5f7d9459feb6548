from django.db import models


class DeploymentAction(models.TextChoices):
    INSTALL_APPROVED = "install_approved", "install the approved updates each machine needs"
    UPGRADE = "upgrade", "upgrade everything its ring's repository offers (apt upgrade)"
    INSTALL = "install", "install named packages"
    REMOVE = "remove", "remove named packages"
    REBOOT = "reboot", "reboot the machines that report a reboot is required"
    ROLLBACK = "rollback", "return machines to the versions they had before a deployment"


class DeploymentState(models.TextChoices):
    SCHEDULED = "scheduled", "scheduled"  # before its start time or waiting for a maintenance window
    RUNNING = "running", "running"
    HALTED = "halted", "halted"  # the failure threshold was reached; no more machines start
    COMPLETED = "completed", "completed"
    CANCELED = "canceled", "canceled"


ACTIVE_DEPLOYMENT_STATES = (DeploymentState.SCHEDULED, DeploymentState.RUNNING)


class MachineJobState(models.TextChoices):
    """waiting -> queued (params fixed, delivered at check-ins) -> delivered -> succeeded | failed | expired.
    waiting -> skipped (nothing to do on that machine); waiting | queued -> canceled;
    queued past its deadline -> expired (never picked up); delivered long past it -> timed_out (a late
    result is still recorded)."""

    WAITING = "waiting", "waiting"
    QUEUED = "queued", "queued"
    DELIVERED = "delivered", "delivered"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    EXPIRED = "expired", "expired"
    TIMED_OUT = "timed_out", "timed out"
    SKIPPED = "skipped", "skipped"
    CANCELED = "canceled", "canceled"


DELIVERABLE = (MachineJobState.QUEUED, MachineJobState.DELIVERED)
ACCEPTS_RESULT = (MachineJobState.QUEUED, MachineJobState.DELIVERED, MachineJobState.TIMED_OUT)
FINISHED_JOB_STATES = (
    MachineJobState.SUCCEEDED,
    MachineJobState.FAILED,
    MachineJobState.EXPIRED,
    MachineJobState.TIMED_OUT,
)
FAILED_JOB_STATES = (MachineJobState.FAILED, MachineJobState.EXPIRED, MachineJobState.TIMED_OUT)
OPEN_JOB_STATES = (MachineJobState.WAITING, MachineJobState.QUEUED, MachineJobState.DELIVERED)
