"""Signal receivers: repos listens to the catalog (never the reverse) and notes each request's host."""

from __future__ import annotations

from django.core.signals import request_finished, request_started
from django.db import transaction
from django.dispatch import receiver

from uus.catalog.signals import archive_changed

from . import services


@receiver(archive_changed, dispatch_uid="repos-archive-changed")
def on_archive_changed(sender, upstream, index_ids, **kwargs):
    from uus.jobs.services import dispatch

    from . import tasks

    transaction.on_commit(lambda: dispatch(tasks.upstream_indexes_changed, kwargs={"index_ids": list(index_ids)}))


@receiver(request_started, dispatch_uid="repos-request-base")
def on_request_started(sender, environ=None, **kwargs):
    """Without `base_url`, apt lines sent to an agent use the address it reached us at."""
    if not environ:
        return
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    scheme = environ.get("wsgi.url_scheme", "http")
    if any(c in host for c in "/\\ @\r\n"):
        host = "localhost"
    services.request_base_url_set(f"{scheme}://{host}")


@receiver(request_finished, dispatch_uid="repos-request-base-end")
def on_request_finished(sender, **kwargs):
    services.request_base_url_set(None)
