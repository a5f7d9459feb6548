"""Keeping findings current. Everything here is incremental: a new (package set, release) pair is
evaluated alone, an imported notice only against the pairs whose sets have its source packages (the join
starts from the notice's affected entries and walks the package(source, version key) index).

Findings are written only for the releases machines use a set on (EvaluatedSet pairs): an entry of
another release can never concern those machines, and storing it would make every query filter it out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import connection, transaction

from uus.catalog.models import AffectedPackage
from uus.inventory.choices import PackageStatus
from uus.inventory.models import Machine, Package, PackageChunkMember, PackageSetChunk

from . import machine_counts
from .models import EvaluatedSet, Finding, MachineCount

log = logging.getLogger(__name__)
_BATCH = 500


def _tables() -> dict[str, str]:
    return {
        "finding": Finding._meta.db_table,
        "affected": AffectedPackage._meta.db_table,
        "package": Package._meta.db_table,
        "member": PackageChunkMember._meta.db_table,
        "setchunk": PackageSetChunk._meta.db_table,
        "pair": EvaluatedSet._meta.db_table,
    }


def _insert_sql(where: str) -> str:
    """Findings of notices' entries (`where` on `a`): the join starts from the entries and walks the
    package(source, version key) index to the sets that have those sources."""
    t = _tables()
    # One statement: the database compares dpkg byte keys on its indexes; nothing goes through Python.
    return f"""
        INSERT INTO {t["finding"]} (package_set_id, affected_id, package_id)
        SELECT DISTINCT sc.package_set_id, a.id, p.id
        FROM {t["affected"]} a
        JOIN {t["package"]} p ON p.source = a.source
             AND p.source_version_key >= a.introduced_key
             AND (a.fixed_key IS NULL OR p.source_version_key < a.fixed_key)
        JOIN {t["member"]} m ON m.package_id = p.id AND m.status = {int(PackageStatus.INSTALLED)}
        JOIN {t["setchunk"]} sc ON sc.chunk_id = m.chunk_id
        JOIN {t["pair"]} e ON e.package_set_id = sc.package_set_id AND e.release = a.release
        WHERE {where}
        ON CONFLICT DO NOTHING
    """


def _pair_insert_sql(where: str) -> str:
    """Findings of (set, release) pairs (`where` on `e`, the pair, and `m`, the set's members). The installed
    packages of the pairs come first, in a materialised CTE: the planner cannot start from the notices' side
    then, which it did on PostgreSQL with statistics of near-empty tables (a test database) and scanned the
    chunk members once per entry, for minutes."""
    t = _tables()
    return f"""
        WITH installed AS MATERIALIZED (
            SELECT DISTINCT sc.package_set_id, e.release, m.package_id
            FROM {t["pair"]} e
            JOIN {t["setchunk"]} sc ON sc.package_set_id = e.package_set_id
            JOIN {t["member"]} m ON m.chunk_id = sc.chunk_id AND m.status = {int(PackageStatus.INSTALLED)}
            WHERE {where}
        )
        INSERT INTO {t["finding"]} (package_set_id, affected_id, package_id)
        SELECT DISTINCT i.package_set_id, a.id, p.id
        FROM installed i
        JOIN {t["package"]} p ON p.id = i.package_id
        JOIN {t["affected"]} a ON a.source = p.source AND a.release = i.release
             AND p.source_version_key >= a.introduced_key
             AND (a.fixed_key IS NULL OR p.source_version_key < a.fixed_key)
        WHERE 1 = 1
        ON CONFLICT DO NOTHING
    """


def _run(where: str, params: list, *, pairs: bool = False) -> int:
    with connection.cursor() as cur:
        cur.execute(_pair_insert_sql(where) if pairs else _insert_sql(where), params)
        if pairs and connection.vendor == "sqlite":  # Python's sqlite3 gives no rowcount for WITH … INSERT
            cur.execute("SELECT changes()")
            return cur.fetchone()[0]
        return max(cur.rowcount, 0)


# PostgreSQL runs an inventory upload and a notice import side by side: each statement of either would miss
# the other's uncommitted rows (the new (set, release) pair, the new entries) and a finding would be lost
# for good. New pairs are evaluated under a shared lock, notices under an exclusive one, each taken right
# before its statement (whose snapshot then includes what the other committed). SQLite has one writer.
_EVALUATION_LOCK = 0x0E5905E  # "exposure", an arbitrary application-wide key


def _lock_for(kind: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            fn = "pg_advisory_xact_lock_shared" if kind == "pairs" else "pg_advisory_xact_lock"
            cur.execute(f"SELECT {fn}(%s)", [_EVALUATION_LOCK])


def _batches(items: Iterable, size: int = _BATCH):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]


@transaction.atomic
def exposure_evaluate_pairs(pairs: Iterable[tuple[int, str]]) -> int:
    """Findings of (package set, release) pairs against every stored notice; marks them evaluated.
    Pairs already evaluated are skipped: sets are immutable, so their findings are complete."""
    wanted = set(pairs)
    n = 0
    if wanted:
        _lock_for("pairs")
    for chunk in _batches(sorted(wanted)):
        existing = set(
            EvaluatedSet.objects.filter(package_set_id__in={s for s, _ in chunk}).values_list(
                "package_set_id", "release"
            )
        )
        new = [p for p in chunk if p not in existing]
        if not new:
            continue
        made = EvaluatedSet.objects.bulk_create([EvaluatedSet(package_set_id=s, release=r) for s, r in new])
        ids = (
            [e.pk for e in made]
            if all(e.pk for e in made)
            else list(EvaluatedSet.objects.filter(package_set_id__in={s for s, _ in new}).values_list("pk", flat=True))
        )
        marks = ",".join(["%s"] * len(ids))
        # a few pairs (an upload): from their installed packages; many (a rebuild): from the entries, fewer rows
        n += _run(f"e.id IN ({marks})", ids, pairs=len(ids) <= 20)
    return n


# A changed inventory that differs from the previous one in more packages than this is evaluated whole:
# copying the old findings saves nothing when most of them would be left out.
DELTA_LIMIT = 400


@transaction.atomic
def exposure_evaluate_change(*, set_id: int, release: str, old_set_id: int | None, changed_package_ids) -> int:
    """A machine moved from set `old_set_id` to `set_id` on `release`. Sets are immutable, so a pair evaluated
    before is complete and costs one lookup. A new pair whose machine came from an evaluated pair re-evaluates
    only the changed packages: the old set's findings of the other packages still hold (those packages are
    installed in both sets alike) and are copied; the changed ones are matched against every notice. Any
    other new pair is evaluated whole."""
    if EvaluatedSet.objects.filter(package_set_id=set_id, release=release).exists():
        return 0
    if old_set_id is None or not EvaluatedSet.objects.filter(package_set_id=old_set_id, release=release).exists():
        return exposure_evaluate_pairs([(set_id, release)])
    changed = sorted(changed_package_ids)
    if len(changed) > DELTA_LIMIT:
        return exposure_evaluate_pairs([(set_id, release)])
    _lock_for("pairs")
    pair = EvaluatedSet.objects.create(package_set_id=set_id, release=release)
    t = {"finding": Finding._meta.db_table, "affected": AffectedPackage._meta.db_table}
    marks = ",".join(["%s"] * len(changed))
    unchanged = f"AND f.package_id NOT IN ({marks})" if changed else ""
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO {t["finding"]} (package_set_id, affected_id, package_id)
                SELECT %s, f.affected_id, f.package_id
                FROM {t["finding"]} f JOIN {t["affected"]} a ON a.id = f.affected_id
                WHERE f.package_set_id = %s AND a.release = %s {unchanged}
                ON CONFLICT DO NOTHING""",
            [set_id, old_set_id, release, *changed],
        )
        n = max(cur.rowcount, 0)
    if changed:
        n += _run(f"e.id = %s AND m.package_id IN ({marks})", [pair.pk, *changed], pairs=True)
    return n


def exposure_evaluate_sets(set_ids: Iterable[int]) -> int:
    """Findings of package sets, for every release machines use them on."""
    pairs = set()
    for chunk in _batches(set_ids):
        pairs |= set(Machine.objects.filter(package_set_id__in=chunk).values_list("package_set_id", "release"))
    return exposure_evaluate_pairs(pairs)


@transaction.atomic
def exposure_evaluate_notices(notice_ids: Iterable[str]) -> int:
    """Findings of (re)imported notices against every evaluated pair whose set has their source packages.
    Replaced notices lost their old affected rows, and with them their findings (cascade)."""
    n = 0
    notice_ids = list(notice_ids)
    if notice_ids:
        _lock_for("notices")
    for chunk in _batches(notice_ids):
        marks = ",".join(["%s"] * len(chunk))
        n += _run(f"a.notice_id IN ({marks})", chunk)
    return n


def exposure_evaluate_pending() -> int:
    """Evaluate every (set, release) pair machines use that has not been evaluated yet (a machine whose
    release changed while its packages did not, or pairs created while evaluation was switched off).
    The pairs in use are read from the machine counts: a few thousand rows, not the machine table."""
    in_use = set(MachineCount.objects.values_list("package_set_id", "release").distinct())
    done = set(EvaluatedSet.objects.values_list("package_set_id", "release"))
    return exposure_evaluate_pairs(in_use - done)


@transaction.atomic
def exposure_rebuild() -> int:
    """Recompute every finding and every machine count from scratch (a repair tool; never needed per
    event: the tests check that the incremental findings and counts equal what this makes)."""
    machine_counts.recount()
    Finding.objects.all().delete()
    EvaluatedSet.objects.all().delete()
    return exposure_evaluate_pending()
