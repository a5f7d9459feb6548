"""`inventory_changed`: sent after every change of a machine's inventory, inside its transaction.

Receivers get `machine` (the Machine, already pointing at its new package set) and
`changed_package_ids` (a set of Package ids that appeared in, left, or changed status in the
machine's inventory; on a machine's first inventory all of them, read from the database only if a
receiver looks). Exposure evaluates the machine's new (package set, release) pair. Receivers run in
the upload's transaction: keep them quick (dispatch a job for anything slow, which is itself a row
written in the same transaction) and let errors propagate, so an inventory and what is derived from
it are stored together or not at all.
"""

from collections.abc import Set as AbstractSet

from django.dispatch import Signal

inventory_changed = Signal()


def inventory_changed_send(machine, changed_package_ids: AbstractSet[int]) -> None:
    inventory_changed.send(sender=type(machine), machine=machine, changed_package_ids=changed_package_ids)


def has_receivers() -> bool:
    return inventory_changed.has_listeners()
