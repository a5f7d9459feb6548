"""Notifications (e-mail over SMTP through Django's mail, and a JSON webhook) on new security updates of
a priority or above, halted deployments and failed jobs.

Configured by the settings keys `notify_emails` (a list of addresses), `notify_webhook` (a URL),
`notify_min_priority` and `smtp_*`, read from `settings.UUS`; with neither target set nothing is sent.
Sending happens after the change commits, and a failure to notify is logged and never undoes the
change. The webhook URL is logged by scheme and host only: hook URLs often carry their secret in the
path or query.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def _targets() -> tuple[list[str], str]:
    conf = getattr(settings, "UUS", {}) or {}
    emails = conf.get("notify_emails") or []
    if isinstance(emails, str):
        emails = [e.strip() for e in emails.split(",") if e.strip()]
    return list(emails), str(conf.get("notify_webhook") or "").strip()


def _text(message: str, data: dict) -> str:
    """The e-mail body: the message, one line per field or update, and the webhook's JSON for tools."""
    lines = [message, ""]
    for key, value in data.items():
        if key == "updates":
            for u in value:
                notices = ", ".join(u["notices"]) or "security pocket"
                priority = u["priority"] or "-"
                lines.append(f"  {u['package']} {u['version']}  {priority}  {notices}  {u['machines']} machines")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join([*lines, "", json.dumps(data, indent=2, default=str), ""])


def _send(event: str, message: str, data: dict) -> None:
    emails, webhook = _targets()
    if emails:
        from django.core.mail import send_mail

        try:
            send_mail(f"[UUS] {message}", _text(message, data), None, emails)
        except Exception:
            log.exception("could not e-mail the %s notification", event)
    if webhook:
        body = json.dumps({"event": event, "message": message, **data}, default=str).encode()
        req = urllib.request.Request(webhook, data=body, headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except Exception as exc:
            log.error("could not post the %s notification to %s: %s", event, _shown(webhook), type(exc).__name__)


def _shown(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':%d' % parts.port if parts.port else ''}/..."


def notify(event: str, message: str, **data) -> None:
    emails, webhook = _targets()
    if emails or webhook:
        transaction.on_commit(lambda: _send(event, message, data))


def security_updates_notify(*, min_priority: str | None = None) -> int:
    """Announce security updates of `min_priority` or above (settings key `notify_min_priority`, default
    high) that machines need and that were not announced before; returns how many were announced."""
    emails, webhook = _targets()
    if not (emails or webhook):
        return 0
    from uus.approvals import selectors as approvals
    from uus.catalog.choices import priority_rank
    from uus.inventory.models import Machine

    from .models import NotifiedUpdate

    least = priority_rank(min_priority or (getattr(settings, "UUS", {}) or {}).get("notify_min_priority") or "high")
    rows = approvals.updates_pending(
        ring=approvals.default_ring(), machines_qs=Machine.objects.filter(is_revoked=False)
    )
    known = set(NotifiedUpdate.objects.values_list("name", "version"))
    new = [u for u in rows if u.is_security and u.priority_rank >= least and (u.name, u.version) not in known]
    if not new:
        return 0
    with transaction.atomic():
        NotifiedUpdate.objects.bulk_create(
            [NotifiedUpdate(name=u.name, version=u.version) for u in new], ignore_conflicts=True
        )
        updates = [
            {
                "package": u.name,
                "version": u.version,
                "priority": u.priority,
                "notices": u.notices,
                "machines": u.machines,
            }
            for u in new
        ]
        notify("security_updates", f"{len(new)} new security updates to decide", updates=updates)
    return len(new)
