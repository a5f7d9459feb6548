"""Signal receivers: the catalog and inventory never import exposure; exposure listens to them."""

from __future__ import annotations

from django.dispatch import receiver

from uus.catalog.signals import notices_changed
from uus.inventory.signals import inventory_changed

from . import services
from .models import EvaluatedSet


@receiver(inventory_changed, dispatch_uid="exposure-inventory")
def on_inventory_changed(sender, machine, changed_package_ids, **kwargs):
    # Sets are immutable and content-addressed: a set seen before already has its findings.
    if machine.package_set_id and not EvaluatedSet.objects.filter(pk=machine.package_set_id).exists():
        services.exposure_evaluate_sets([machine.package_set_id])


@receiver(notices_changed, dispatch_uid="exposure-notices")
def on_notices_changed(sender, notice_ids, **kwargs):
    services.exposure_evaluate_notices(notice_ids)
