"""Reads of rings and approvals."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Ring, RingMembership

DEFAULT_RING = "production"


def ring_list() -> QuerySet[Ring]:
    return Ring.objects.all()


def ring_of(machine) -> Ring:
    m = RingMembership.objects.select_related("ring").filter(machine=machine).first()
    return m.ring if m else Ring.objects.get(name=DEFAULT_RING)


def ring_visible_packages(ring: Ring):
    """What a ring's repository exposes of the upstream catalog. Until approvals exist every synced
    package is visible; the approvals work replaces this one function with "exactly the approved set"."""
    from uus.catalog.models import ArchivePackage

    return ArchivePackage.objects.select_related("index", "index__upstream")
