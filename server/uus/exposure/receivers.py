"""Signal receivers: the catalog and inventory never import exposure; exposure listens to them."""

from __future__ import annotations

from django.dispatch import receiver

from uus.catalog.signals import notices_changed
from uus.inventory.signals import inventory_changed

from . import services


@receiver(inventory_changed, dispatch_uid="exposure-inventory")
def on_inventory_changed(sender, machine, changed_package_ids, **kwargs):
    # Sets are immutable and content-addressed: a (set, release) pair seen before already has its
    # findings, so a machine moving to an inventory another machine has costs one lookup.
    if machine.package_set_id:
        services.exposure_evaluate_pairs([(machine.package_set_id, machine.release)])


@receiver(notices_changed, dispatch_uid="exposure-notices")
def on_notices_changed(sender, notice_ids, **kwargs):
    services.exposure_evaluate_notices(notice_ids)
