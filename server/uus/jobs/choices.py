from django.db import models


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)
