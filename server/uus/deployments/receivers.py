"""New notices or upstream packages can make new security updates: announce them and let the approval
rules decide them soon after, instead of at the next hourly or ten-minute run of those jobs."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from uus.catalog.signals import archive_changed, notices_changed


def _queue_once(fn) -> None:
    from uus.jobs.choices import JobState
    from uus.jobs.models import Job
    from uus.jobs.services import dispatch

    if not Job.objects.filter(name=fn.job_name, state=JobState.QUEUED).exists():
        dispatch(fn)


def _after_catalog_change() -> None:
    from . import tasks

    _queue_once(tasks.approval_rules_apply)
    _queue_once(tasks.security_updates_notify)


@receiver(notices_changed, dispatch_uid="uus.deployments.notices_changed")
def on_notices_changed(sender, **kwargs) -> None:
    transaction.on_commit(_after_catalog_change)


@receiver(archive_changed, dispatch_uid="uus.deployments.archive_changed")
def on_archive_changed(sender, **kwargs) -> None:
    transaction.on_commit(_after_catalog_change)
