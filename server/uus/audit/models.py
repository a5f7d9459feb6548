"""Audit events: an append-only record of who did what to which thing, and why."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEventQuerySet(models.QuerySet):
    """Bulk changes are refused here with a clear message; the database refuses them too (guard.py)."""

    def update(self, **kwargs):
        raise ValueError("audit events are append-only")

    def delete(self):
        raise ValueError("audit events are append-only")

    def bulk_update(self, objs, fields, batch_size=None):
        raise ValueError("audit events are append-only")


class AuditEvent(models.Model):
    """One event. Rows are only ever added: `save()` refuses to update, `delete()` and the queryset's
    `update()`/`delete()` refuse outright, and triggers in the database refuse any UPDATE or DELETE
    that gets past them (uus.audit.guard; retention, once it exists, must lift that guard on purpose).
    `actor_name` copies the name so the row still reads correctly after the user is gone; machine-made
    events have no user (`actor_name` "system" or the machine's hostname)."""

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True, help_text='dotted, e.g. "approval.set", "job.result"')
    target = models.CharField(max_length=300, db_index=True, help_text='e.g. "ring:test", "machine:web-01"')
    reason = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit events are append-only")
