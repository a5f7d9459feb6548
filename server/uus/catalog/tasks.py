"""Catalog jobs: thin wrappers that call one service."""

from django.conf import settings

from uus.jobs.registry import job

from . import services


@job("Import security notices", locks=("catalog:notices",))
def notices_import(ctx, source: str):
    ctx.log(f"importing notices from {source}")
    result = services.notices_import(source, ctx=ctx)
    ctx.log(
        f"{result.imported} new, {result.updated} updated, {result.unchanged} unchanged, {len(result.failed)} malformed"
    )
    return result.as_dict()


@job("Import the notices feed", every=6 * 3600, locks=("catalog:notices",))
def notices_import_feed(ctx):
    url = settings.UUS["notices_feed_url"]
    if not url:
        ctx.log("no notices_feed_url configured; nothing to do")
        return {"skipped": True}
    return notices_import(ctx, source=url)


@job("Sync an upstream archive")
def upstream_sync(ctx, name: str):
    from .models import Upstream

    upstream = Upstream.objects.get(name=name)
    result = services.upstream_sync(upstream, ctx=ctx)
    ctx.log(f"{result.indexes_changed} changed, {result.indexes_unchanged} unchanged, {result.packages} packages")
    return result.as_dict()


@job("Sync every upstream archive", every=3600)
def upstreams_sync_due(ctx):
    """Runs hourly; syncs each enabled upstream whose last attempt is older than upstream_sync_minutes,
    so a failed sync is retried on the next schedule."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    from uus.jobs.services import dispatch

    from .models import Upstream

    cutoff = timezone.now() - timedelta(minutes=settings.UUS["upstream_sync_minutes"])
    due = Upstream.objects.filter(is_enabled=True).filter(
        Q(last_sync_started__isnull=True) | Q(last_sync_started__lt=cutoff)
    )
    names = list(due.values_list("name", flat=True))
    for name in names:
        dispatch(upstream_sync, kwargs={"name": name}, locks=[f"upstream:{name}"])
    ctx.log(f"queued syncs: {', '.join(names) or 'none due'}")
    return {"queued": names}
