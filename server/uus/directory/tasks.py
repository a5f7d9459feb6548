"""Directory jobs: thin wrappers that load a source by name and call one service."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from uus.jobs.registry import job

from . import selectors, services


def sync_lock(name: str) -> str:
    """The lock every sync of one directory holds, so that two never interleave."""
    return f"directory:{name}"


@job("Sync a directory")
def directory_sync(ctx, name: str, dry_run: bool = False, allow_empty: bool = False):
    source = selectors.directory_source_get(name)
    ctx.log(f"{'dry run of ' if dry_run else ''}sync of directory {name} ({source.url}, base {source.base_dn})")
    return services.directory_sync(source=source, dry_run=dry_run, allow_empty=allow_empty, ctx=ctx)


@job("Test a directory connection")
def directory_test(ctx, name: str):
    result = services.directory_source_test(source=selectors.directory_source_get(name))
    ctx.log(result["message"])
    return result


@job("Sync every directory that is due", every=300)
def directories_sync_due(ctx):
    """Runs every five minutes; queues a sync of each enabled directory whose last attempt is older
    than its sync interval (so a failed sync is retried at the next interval, not in a tight loop),
    and removes bind-password files that no directory uses any more."""
    from uus.jobs.choices import JobState
    from uus.jobs.models import Job
    from uus.jobs.services import dispatch

    from .models import DirectorySource
    from .secret_store import secrets_prune

    now = timezone.now()
    queued = []
    for source in DirectorySource.objects.filter(is_enabled=True):
        due = source.last_sync_started is None or source.last_sync_started < now - timedelta(
            minutes=source.sync_interval_minutes
        )
        pending = Job.objects.filter(
            name=directory_sync.job_name, kwargs__name=source.name, state__in=[JobState.QUEUED, JobState.RUNNING]
        ).exists()
        if due and not pending:
            dispatch(directory_sync, kwargs={"name": source.name}, locks=[sync_lock(source.name)])
            queued.append(source.name)
    in_use = set(DirectorySource.objects.filter(~Q(bind_password_file="")).values_list("bind_password_file", flat=True))
    pruned = secrets_prune(in_use)
    ctx.log(f"queued syncs: {', '.join(queued) or 'none due'}; {pruned} unused password file(s) removed")
    return {"queued": queued, "pruned": pruned}
