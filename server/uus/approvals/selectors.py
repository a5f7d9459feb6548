"""Reads of rings, approvals and machine groups.

`ring_visible_packages(ring)` is what the ring's APT repository publishes (uus.repos reads it):
exactly the approved versions, plus versions kept for rollback, never a declined one.
`approval_state(ring, package, version)` is what other apps (exposure) show next to a finding.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from uus.core.debversion import version_key

from .choices import ApprovalState, GroupKind
from .exceptions import GroupNotFound, RingNotFound, RuleNotFound
from .models import Approval, ApprovalRule, MachineGroup, RetainedVersion, Ring, RingMembership

DEFAULT_RING = "production"
PENDING = "pending"  # no decision recorded


def ring_list() -> QuerySet[Ring]:
    return Ring.objects.all()


def ring_get(name: str) -> Ring:
    if name == DEFAULT_RING:
        return default_ring()
    try:
        return Ring.objects.get(name=name)
    except Ring.DoesNotExist:
        known = ", ".join(Ring.objects.values_list("name", flat=True))
        raise RingNotFound(f"no ring named '{name}' (rings: {known})") from None


def default_ring() -> Ring:
    """`production`, which migration 0001 creates; made again if a database flush removed it (a
    transactional test), since every machine without a membership belongs to it."""
    ring = Ring.objects.filter(name=DEFAULT_RING).first()
    if ring is None:
        ring, _ = Ring.objects.get_or_create(
            name=DEFAULT_RING, defaults={"position": 100, "description": "the rest of the fleet"}
        )
    return ring


def ring_of(machine) -> Ring:
    """The machine's ring: its membership's, else `production`. One indexed statement, written out
    because it runs at check-ins (the ORM spent four times as long compiling it as SQLite running it)."""
    from django.db import connection

    q = connection.ops.quote_name
    rings, members = q(Ring._meta.db_table), q(RingMembership._meta.db_table)
    sql = (
        f"SELECT * FROM {rings} WHERE {q('id')} = COALESCE("
        f"(SELECT {q('ring_id')} FROM {members} WHERE {q('machine_id')} = %s), "
        f"(SELECT {q('id')} FROM {rings} WHERE {q('name')} = %s))"
    )
    found = list(Ring.objects.raw(sql, [machine.pk, DEFAULT_RING]))
    return found[0] if found else default_ring()


def ring_machines(ring: Ring) -> QuerySet:
    """Machines (not revoked) in a ring; machines without a membership are in `production`."""
    from uus.inventory.models import Machine

    qs = Machine.objects.filter(is_revoked=False)
    if ring.name == DEFAULT_RING:
        return qs.filter(Q(ring_membership__isnull=True) | Q(ring_membership__ring=ring))
    return qs.filter(ring_membership__ring=ring)


def ring_next(ring: Ring) -> Ring | None:
    """The ring after `ring` in promotion order."""
    return Ring.objects.filter(position__gt=ring.position).order_by("position", "name").first()


def approval_list(*, ring: Ring | None = None, state: str = "", name: str = "") -> QuerySet[Approval]:
    qs = Approval.objects.select_related("ring")
    if ring is not None:
        qs = qs.filter(ring=ring)
    if state:
        qs = qs.filter(state=state)
    if name:
        qs = qs.filter(name=name)
    return qs.order_by("ring__position", "name", "version_key")


def approval_state(ring: Ring, package: str, version: str) -> str:
    """approved | declined | held | pending (no decision yet)."""
    state = Approval.objects.filter(ring=ring, name=package, version=version).values_list("state", flat=True).first()
    return state or PENDING


def approved_versions(ring: Ring) -> dict[str, list[tuple[bytes, str]]]:
    """{package name: [(version key, version), ...]} of the ring's approved set (without versions above
    a pinned one)."""
    pins: dict[str, bytes] = {}
    for name, key in Approval.objects.filter(ring=ring, is_pinned=True).values_list("name", "version_key"):
        pins[name] = min(pins.get(name, bytes(key)), bytes(key))
    out: dict[str, list[tuple[bytes, str]]] = {}
    rows = Approval.objects.filter(ring=ring, state=ApprovalState.APPROVED).values_list(
        "name", "version_key", "version"
    )
    for name, key, version in rows:
        if name in pins and bytes(key) > pins[name]:
            continue
        out.setdefault(name, []).append((bytes(key), version))
    return out


def ring_visible_packages(ring: Ring):
    """What a ring's repository exposes of the upstream catalog: the approved versions and the versions
    retained for rollback, never a declined one (uus.repos publishes each ring from this)."""
    from uus.catalog.models import ArchivePackage

    same = {"ring": ring, "name": OuterRef("name"), "version": OuterRef("version")}
    approved = Approval.objects.filter(state=ApprovalState.APPROVED, **same)
    pinned = Approval.objects.filter(is_pinned=True, **same)
    declined = Approval.objects.filter(state=ApprovalState.DECLINED, **same)
    retained = RetainedVersion.objects.filter(until__gt=timezone.now(), **same)
    # a pinned version keeps the ring at it: nothing newer of that package is exposed
    above_pin = Approval.objects.filter(
        ring=ring, name=OuterRef("name"), is_pinned=True, version_key__lt=OuterRef("version_key")
    )
    return (
        ArchivePackage.objects.select_related("index", "index__upstream")
        .filter(Exists(approved) | Exists(retained) | Exists(pinned))
        .exclude(Exists(declined))
        .exclude(Exists(above_pin))
    )


# -- approval rules ---------------------------------------------------------------------------------


def rule_list() -> QuerySet[ApprovalRule]:
    return ApprovalRule.objects.select_related("ring", "from_ring")


def rule_get(pk) -> ApprovalRule:
    try:
        return rule_list().get(pk=int(pk))
    except (ApprovalRule.DoesNotExist, ValueError, TypeError):
        raise RuleNotFound(f"no approval rule with id {pk!r}") from None


# -- groups ----------------------------------------------------------------------------------------


def group_list() -> QuerySet[MachineGroup]:
    return MachineGroup.objects.all()


def group_get(name: str) -> MachineGroup:
    try:
        return MachineGroup.objects.get(name=name)
    except MachineGroup.DoesNotExist:
        raise GroupNotFound(f"no machine group named '{name}'") from None


def glob_regex(pattern: str) -> str:
    """A hostname glob (web-*, db-0?) as an anchored regular expression the database can run."""
    return r"^" + fnmatch.translate(pattern).removeprefix("(?s:").removesuffix(r")\Z") + r"$"


def group_machines(group: MachineGroup) -> QuerySet:
    """The machines (not revoked) of a group, as a queryset."""
    from uus.inventory.models import Machine

    qs = Machine.objects.filter(is_revoked=False)
    if group.kind == GroupKind.MANUAL:
        return qs.filter(machine_groups=group)
    if group.kind == GroupKind.OU:
        from uus.directory.selectors import machines_in_ou

        return machines_in_ou(group.ou_dn, queryset=qs)
    if group.release:
        qs = qs.filter(release=group.release)
    if group.hostname_pattern:
        qs = qs.filter(hostname__iregex=glob_regex(group.hostname_pattern))
    return qs


def machine_groups_of(machine) -> list[MachineGroup]:
    """Every group a machine is in (rule and OU groups are evaluated)."""
    return [g for g in MachineGroup.objects.all() if group_machines(g).filter(pk=machine.pk).exists()]


# -- updates: newer upstream versions of installed packages -----------------------------------------


@dataclass
class Update:
    name: str
    version: str
    source: str
    source_version: str
    machines: int
    priority: str
    priority_rank: int
    notices: list[str]
    state: str
    pocket: str = ""

    @property
    def sort_key(self) -> bytes:
        return version_key(self.version)

    @property
    def is_security(self) -> bool:
        """A notice names it, or it comes from a security pocket (bookworm-security, jammy-security): the
        archive publishes only security fixes there, with or without a notice the catalog knows."""
        from uus.catalog.choices import Pocket

        return bool(self.notices) or self.pocket == Pocket.SECURITY


def _security(
    source: str, source_version_key: bytes, installed_min_key: bytes, releases: list[str]
) -> tuple[str, int, list[str]]:
    """Notices fixed by going from the oldest installed source version to this one, on the machines'
    releases (an Ubuntu notice says nothing about a Debian machine's package of the same name)."""
    from uus.catalog.models import AffectedPackage

    rows = (
        AffectedPackage.objects.filter(
            source=source,
            release__in=releases,
            fixed_key__lte=source_version_key,
            fixed_key__gt=installed_min_key,
            is_pro=False,
        )
        .select_related("notice")
        .order_by("-notice__priority_rank")
    )
    notices = sorted({r.notice_id for r in rows})
    top = rows.first()
    return (top.notice.priority if top else ""), (top.notice.priority_rank if top else 0), notices


def updates_pending(
    *, ring: Ring, state: str = "", name: str = "", machines_qs: QuerySet | None = None
) -> list[Update]:
    """Every upstream version newer than a version installed on the ring's machines, with how many
    of them have an older one, its security priority and the ring's decision. Sorted by priority,
    then machines affected. `state` filters on the decision (pending, approved, declined, held)."""
    from uus.catalog.models import ArchivePackage
    from uus.inventory.selectors import machines_with_packages, packages_matching

    machines = machines_qs if machines_qs is not None else ring_machines(ring)
    installed = machines_with_packages(machines, packages_matching(name=name) if name else _all_packages())
    if not installed.exists():
        return []
    from uus.inventory.models import Package, PackageChunkMember, PackageSetChunk

    chunk_ids = PackageSetChunk.objects.filter(package_set_id__in=machines.values("package_set_id")).values("chunk_id")
    pkg_ids = PackageChunkMember.objects.filter(chunk_id__in=chunk_ids).values("package_id")
    older = Package.objects.filter(pk__in=pkg_ids, name=OuterRef("name"), version_key__lt=OuterRef("version_key"))
    qs = ArchivePackage.objects.filter(Exists(older))
    if name:
        qs = qs.filter(name=name)
    rows = qs.values_list(
        "name", "version", "version_key", "source", "source_version", "source_version_key", "index__pocket"
    ).distinct()
    decisions = {(a.name, a.version): a.state for a in Approval.objects.filter(ring=ring)}
    releases = sorted(set(machines.values_list("release", flat=True).distinct()))
    from uus.catalog.choices import Pocket

    # one row per version; a version in several indexes is a security update if one is a security pocket
    by_version: dict[tuple[str, str], tuple] = {}
    for row in rows:
        key = (row[0], row[1])
        if key not in by_version or row[6] == Pocket.SECURITY:
            by_version[key] = row
    out: list[Update] = []
    for n, v, _key, src, src_v, src_key, pocket in by_version.values():
        decision = decisions.get((n, v), PENDING)
        if state and decision != state:
            continue
        olders = packages_matching(name=n, version_lt=v)
        count = machines_with_packages(machines, olders).count()
        if not count:
            continue
        min_src = olders.order_by("source_version_key").values_list("source_version_key", flat=True).first()
        priority, rank, notices = _security(src, bytes(src_key), bytes(min_src or b""), releases)
        out.append(Update(n, v, src, src_v, count, priority, rank, notices, decision, pocket))
    # by priority, then security before regular, then machines affected
    out.sort(key=lambda u: (-u.priority_rank, not u.is_security, -len(u.notices), -u.machines, u.name, u.sort_key))
    return out


UPDATE_KINDS = ("security", "regular")


def updates_filter(rows: list[Update], *, kind: str = "", min_priority: str = "") -> list[Update]:
    """Narrow an updates list: `kind` security or regular, `min_priority` (security at or above it)."""
    from uus.catalog.choices import PRIORITIES, priority_rank

    from .exceptions import ApprovalInvalid

    if kind and kind not in UPDATE_KINDS:
        raise ApprovalInvalid(f"'{kind}' is not a kind of update: use security or regular")
    if min_priority and min_priority not in PRIORITIES:
        raise ApprovalInvalid(f"priority '{min_priority}' is not one of {', '.join(PRIORITIES)}")
    if kind:
        rows = [u for u in rows if u.is_security == (kind == "security")]
    if min_priority:
        least = priority_rank(min_priority)
        rows = [u for u in rows if u.is_security and u.priority_rank >= least]
    return rows


def _all_packages():
    from uus.inventory.models import Package

    return Package.objects.all()


def is_valid_glob(pattern: str) -> bool:
    try:
        re.compile(glob_regex(pattern))
    except re.error:
        return False
    return True
