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

from .models import EvaluatedSet, Finding

log = logging.getLogger(__name__)
_BATCH = 500


def _insert_sql(where: str) -> str:
    t = {
        "finding": Finding._meta.db_table,
        "affected": AffectedPackage._meta.db_table,
        "package": Package._meta.db_table,
        "member": PackageChunkMember._meta.db_table,
        "setchunk": PackageSetChunk._meta.db_table,
        "pair": EvaluatedSet._meta.db_table,
    }
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


def _run(where: str, params: list) -> int:
    with connection.cursor() as cur:
        cur.execute(_insert_sql(where), params)
        return max(cur.rowcount, 0)


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
        n += _run(f"e.id IN ({marks})", ids)
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
    for chunk in _batches(notice_ids):
        marks = ",".join(["%s"] * len(chunk))
        n += _run(f"a.notice_id IN ({marks})", chunk)
    return n


def exposure_evaluate_pending() -> int:
    """Evaluate every (set, release) pair machines use that has not been evaluated yet (after an
    upgrade, or pairs created while evaluation was switched off)."""
    in_use = set(Machine.objects.filter(package_set__isnull=False).values_list("package_set_id", "release").distinct())
    done = set(EvaluatedSet.objects.values_list("package_set_id", "release"))
    return exposure_evaluate_pairs(in_use - done)


@transaction.atomic
def exposure_rebuild() -> int:
    """Recompute every finding from scratch (a repair tool; never needed per event)."""
    Finding.objects.all().delete()
    EvaluatedSet.objects.all().delete()
    return exposure_evaluate_pending()
