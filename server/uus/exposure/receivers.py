"""Signal receivers: the catalog and inventory never import exposure; exposure listens to them."""

from __future__ import annotations

from django.dispatch import receiver

from uus.catalog.signals import notices_changed
from uus.inventory.models import InventoryChange
from uus.inventory.signals import inventory_changed

from . import services


@receiver(inventory_changed, dispatch_uid="exposure-inventory")
def on_inventory_changed(sender, machine, changed_package_ids, **kwargs):
    # Sets are immutable and content-addressed: a (set, release) pair seen before already has its
    # findings, so a machine moving to an inventory another machine has costs one lookup; a new one
    # re-evaluates only the packages that changed from the machine's previous set.
    if not machine.package_set_id:
        return
    old_set_id = (
        InventoryChange.objects.filter(machine_id=machine.pk, new_set_id=machine.package_set_id)
        .order_by("-time", "-id")
        .values_list("old_set_id", flat=True)
        .first()
    )
    services.exposure_evaluate_change(
        set_id=machine.package_set_id,
        release=machine.release,
        old_set_id=old_set_id,
        changed_package_ids=changed_package_ids,
    )


@receiver(notices_changed, dispatch_uid="exposure-notices")
def on_notices_changed(sender, notice_ids, **kwargs):
    services.exposure_evaluate_notices(notice_ids)
