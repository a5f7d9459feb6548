"""Reads of machines and their packages. Query counts are fixed per call (no per-row queries).

For exposure: `machines_with_source` and `machine_source_versions` answer "which machines have a
binary of source package S at a source version below F" with one query that joins
Machine -> PackageSetChunk -> PackageChunkMember -> Package on integer keys and compares the dpkg byte
keys (uus.core.debversion.version_key) inside the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from uus.core.debversion import version_key

from .choices import ABSENT_STATUSES, ChangeKind, PackageStatus
from .constants import STALE_AFTER
from .exceptions import MachineNotFound
from .models import InventoryChange, Machine, Package, PackageChunkMember, PackageSetChunk

PRESENT_STATUSES = [s for s in PackageStatus.values if s not in ABSENT_STATUSES]


def machine_list() -> QuerySet[Machine]:
    """Every machine, with what list pages show (one query per page, plus the count)."""
    return Machine.objects.select_related("package_set").defer("apt_sources", "reboot_required_packages")


def machine_get(*, ident: str) -> Machine:
    """A machine by uuid, hostname or fqdn. Among several with one name, the most recently seen
    one that is not revoked."""
    qs = Machine.objects.select_related("package_set")
    try:
        found = qs.filter(uuid=uuid.UUID(str(ident))).first()
    except ValueError:
        found = None
    if found is None:
        found = qs.filter(Q(hostname=ident) | Q(fqdn=ident)).order_by("is_revoked", "-last_seen", "-id").first()
    if found is None:
        raise MachineNotFound(f"no machine named or numbered {ident!r}")
    return found


def stale_before():
    return timezone.now() - STALE_AFTER


def machine_counts(qs: QuerySet[Machine]) -> dict:
    """Totals over a (filtered) machine queryset, in one query, plus one for the releases."""
    cutoff = stale_before()
    totals = qs.order_by().aggregate(
        total=Count("id"),
        needs_reboot=Count("id", filter=Q(is_reboot_required=True)),
        stale=Count("id", filter=Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True)),
        revoked=Count("id", filter=Q(is_revoked=True)),
        clone_suspected=Count("id", filter=Q(is_clone_suspected=True)),
    )
    releases = list(qs.order_by().values("os_id", "release").annotate(n=Count("id")).order_by("os_id", "release"))
    return {**totals, "releases": releases}


def machine_packages(*, machine: Machine, search: str = "") -> QuerySet[PackageChunkMember]:
    """The machine's installed packages (member rows with their Package), sorted by name."""
    if not machine.package_set_id:
        return PackageChunkMember.objects.none()
    chunks = PackageSetChunk.objects.filter(package_set_id=machine.package_set_id).values("chunk_id")
    qs = PackageChunkMember.objects.filter(chunk_id__in=chunks).select_related("package")
    if search:
        qs = qs.filter(Q(package__name__contains=search.lower()) | Q(package__source__contains=search.lower()))
    return qs.order_by("package__name", "package__architecture")


def machine_history(*, machine: Machine) -> QuerySet[InventoryChange]:
    """The machine's inventory changes, newest first; inventory_change_packages says what each changed."""
    return InventoryChange.objects.filter(machine=machine).select_related("old_set", "new_set").order_by("-time", "-id")


@dataclass(frozen=True)
class PackageChange:
    """One package's change between two inventories (derived from the two sets, not stored)."""

    kind: str  # ChangeKind
    name: str
    architecture: str
    old_version: str | None
    new_version: str | None


@dataclass
class SetsDiff:
    changes: list[PackageChange] = field(default_factory=list)  # sorted by (name, architecture)
    changed_package_ids: set[int] = field(default_factory=set)  # every entry that differs, purges included


def _chunk_ids(package_set_id: int) -> set[int]:
    return set(PackageSetChunk.objects.filter(package_set_id=package_set_id).values_list("chunk_id", flat=True))


def package_set_package_ids(package_set_id: int) -> set[int]:
    """Every Package id in a set (whatever its status)."""
    return set(
        PackageChunkMember.objects.filter(chunk_id__in=_chunk_ids(package_set_id)).values_list("package_id", flat=True)
    )


def package_sets_diff(old_set_id: int, new_set_id: int) -> SetsDiff:
    """What changed from one inventory to another. Chunks are content-addressed, so only the chunks
    that differ between the two sets are read (two queries whatever the sizes)."""
    old_chunks, new_chunks = _chunk_ids(old_set_id), _chunk_ids(new_set_id)
    gone, came = old_chunks - new_chunks, new_chunks - old_chunks
    old: dict = {}
    new: dict = {}
    rows = PackageChunkMember.objects.filter(chunk_id__in=gone | came).values_list(
        "chunk_id",
        "package_id",
        "status",
        "package__name",
        "package__architecture",
        "package__version",
        "package__version_key",
    )
    for chunk_id, package_id, status, name, arch, version, vkey in rows:
        (old if chunk_id in gone else new)[(name, arch)] = (version, status, package_id, bytes(vkey))
    diff = SetsDiff()
    for k in sorted(old.keys() | new.keys()):
        o, n = old.get(k), new.get(k)
        if o == n or (o is not None and n is not None and o[2] == n[2] and o[1] == n[1]):
            continue
        diff.changed_package_ids.update(x[2] for x in (o, n) if x is not None)
        o_present = o is not None and o[1] not in ABSENT_STATUSES
        n_present = n is not None and n[1] not in ABSENT_STATUSES
        if o_present and n_present:
            if o[0] == n[0]:
                kind = ChangeKind.CHANGED
            else:
                kind = ChangeKind.UPGRADED if n[3] > o[3] else ChangeKind.DOWNGRADED
            old_v, new_v = o[0], n[0]
        elif o_present:
            kind, old_v, new_v = ChangeKind.REMOVED, o[0], None
        elif n_present:
            kind, old_v, new_v = ChangeKind.INSTALLED, None, n[0]
        else:
            continue  # config files purged or left behind again: nothing was installed either way
        diff.changes.append(PackageChange(str(kind), k[0], k[1], old_v, new_v))
    return diff


def inventory_change_packages(change: InventoryChange) -> list[PackageChange]:
    return package_sets_diff(change.old_set_id, change.new_set_id).changes


def packages_matching(
    *,
    name: str = "",
    source: str = "",
    version_gte: str | None = None,
    version_gt: str | None = None,
    version_lte: str | None = None,
    version_lt: str | None = None,
    version: str | None = None,
) -> QuerySet[Package]:
    """Packages by binary `name` (bounds on its version) or by `source` (bounds on the source version)."""
    qs = Package.objects.all()
    field = "version_key"
    if name:
        qs = qs.filter(name=name)
    if source:
        qs = qs.filter(source=source)
        if not name:
            field = "source_version_key"
    for op, value in (("gte", version_gte), ("gt", version_gt), ("lte", version_lte), ("lt", version_lt)):
        if value:
            qs = qs.filter(**{f"{field}__{op}": version_key(value)})
    if version:
        qs = qs.filter(**{field: version_key(version)})
    return qs


def _present_chunks(packages: QuerySet[Package]) -> QuerySet:
    return PackageChunkMember.objects.filter(package__in=packages, status__in=PRESENT_STATUSES).values("chunk_id")


def machines_with_packages(qs: QuerySet[Machine], packages: QuerySet[Package]) -> QuerySet[Machine]:
    """Machines of `qs` that have any of `packages` installed (not just its configuration files)."""
    sets = PackageSetChunk.objects.filter(chunk_id__in=_present_chunks(packages)).values("package_set_id")
    return qs.filter(package_set_id__in=sets)


def machines_with_source(
    *, source: str, release: str | None = None, version_lt: str | None = None, version_gte: str | None = None
) -> QuerySet[Machine]:
    """Machines with a binary of source package `source` installed, optionally only on `release`
    and only where the installed source version is below `version_lt` (a fixed version)."""
    qs = Machine.objects.filter(is_revoked=False)
    if release:
        qs = qs.filter(release=release)
    return machines_with_packages(qs, packages_matching(source=source, version_lt=version_lt, version_gte=version_gte))


def machine_source_versions(*, source: str, release: str | None = None, version_lt: str | None = None):
    """Rows (machine id, uuid, hostname, release, package name, architecture, version, source version)
    for every installed binary of `source` (below `version_lt` if given), in one query."""
    packages = packages_matching(source=source, version_lt=version_lt)
    prefix = "package_set__set_chunks__chunk__members__"
    qs = Machine.objects.filter(
        is_revoked=False, **{f"{prefix}package__in": packages, f"{prefix}status__in": PRESENT_STATUSES}
    )
    if release:
        qs = qs.filter(release=release)
    return qs.values_list(
        "id",
        "uuid",
        "hostname",
        "release",
        f"{prefix}package__name",
        f"{prefix}package__architecture",
        f"{prefix}package__version",
        f"{prefix}package__source_version",
    ).order_by("hostname", "id")
