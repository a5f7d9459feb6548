"""Reads of the repos app that join other apps' data: where private packages are installed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from uus.inventory.models import Machine, Package, PackageChunkMember, PackageSetChunk
from uus.inventory.selectors import PRESENT_STATUSES

from .models import PrivatePackage

SAMPLE_HOSTNAMES = 5


@dataclass
class Installed:
    """Where one private package is installed, from the machines' inventories."""

    machines: int = 0
    hostnames: list = field(default_factory=list)  # the first few, sorted, for the page


def private_package_installs(packages: list[PrivatePackage]) -> dict[int, Installed]:
    """{private package id: Installed} for these packages: the (not revoked) machines whose inventory
    has that exact name, version and architecture installed. Four queries whatever the number of
    packages (a query per package made the packages page slow with thousands of uploads)."""
    wanted = {(p.name, p.version, p.architecture): p.pk for p in packages}
    result = {pk: Installed() for pk in wanted.values()}
    if not wanted:
        return result
    names = sorted({name for name, _v, _a in wanted})
    inventory_ids: dict[int, int] = {}  # inventory Package id -> private package id
    for at in range(0, len(names), 500):
        for pid, name, version, arch in Package.objects.filter(name__in=names[at : at + 500]).values_list(
            "id", "name", "version", "architecture"
        ):
            if (name, version, arch) in wanted:
                inventory_ids[pid] = wanted[(name, version, arch)]
    if not inventory_ids:
        return result
    by_chunk: dict[int, set[int]] = defaultdict(set)
    for chunk_id, package_id in PackageChunkMember.objects.filter(
        package_id__in=list(inventory_ids), status__in=PRESENT_STATUSES
    ).values_list("chunk_id", "package_id"):
        by_chunk[chunk_id].add(inventory_ids[package_id])
    by_set: dict[int, set[int]] = defaultdict(set)
    for set_id, chunk_id in PackageSetChunk.objects.filter(chunk_id__in=list(by_chunk)).values_list(
        "package_set_id", "chunk_id"
    ):
        by_set[set_id] |= by_chunk[chunk_id]
    hostnames: dict[int, list[str]] = defaultdict(list)
    for set_id, hostname in Machine.objects.filter(is_revoked=False, package_set_id__in=list(by_set)).values_list(
        "package_set_id", "hostname"
    ):
        for pk in by_set[set_id]:
            hostnames[pk].append(hostname)
    for pk, hosts in hostnames.items():
        result[pk] = Installed(machines=len(hosts), hostnames=sorted(hosts)[:SAMPLE_HOSTNAMES])
    return result
