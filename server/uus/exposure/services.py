"""Keeping findings current. Everything here is incremental: a new package set is evaluated alone,
an imported notice is evaluated only against the sets that have its source packages (the join starts
from the notice's affected entries and walks the package(source, version key) index)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import connection, transaction

from uus.catalog.models import AffectedPackage
from uus.inventory.choices import PackageStatus
from uus.inventory.models import Package, PackageChunkMember, PackageSet, PackageSetChunk

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
        WHERE {where}
        ON CONFLICT DO NOTHING
    """


def _run(where: str, params: list) -> int:
    with connection.cursor() as cur:
        cur.execute(_insert_sql(where), params)
        return max(cur.rowcount, 0)


def _batches(ids: Iterable, size: int = _BATCH):
    ids = list(ids)
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


@transaction.atomic
def exposure_evaluate_sets(set_ids: Iterable[int]) -> int:
    """Findings of package sets against every stored notice; marks them evaluated."""
    n = 0
    for chunk in _batches(set_ids):
        marks = ",".join(["%s"] * len(chunk))
        n += _run(f"sc.package_set_id IN ({marks})", chunk)
        EvaluatedSet.objects.bulk_create([EvaluatedSet(package_set_id=s) for s in chunk], ignore_conflicts=True)
    return n


@transaction.atomic
def exposure_evaluate_notices(notice_ids: Iterable[str]) -> int:
    """Findings of (re)imported notices against every package set that has their source packages.
    Replaced notices lost their old affected rows, and with them their findings (cascade)."""
    n = 0
    for chunk in _batches(notice_ids):
        marks = ",".join(["%s"] * len(chunk))
        n += _run(f"a.notice_id IN ({marks})", chunk)
    return n


def exposure_evaluate_pending() -> int:
    """Evaluate every package set in use that has not been evaluated yet (after an upgrade, or sets
    created while evaluation was switched off)."""
    pending = (
        PackageSet.objects.filter(machines__isnull=False)
        .exclude(pk__in=EvaluatedSet.objects.values("pk"))
        .values_list("pk", flat=True)
        .distinct()
    )
    return exposure_evaluate_sets(list(pending))


@transaction.atomic
def exposure_rebuild() -> int:
    """Recompute every finding from scratch (a repair tool; never needed per event)."""
    Finding.objects.all().delete()
    EvaluatedSet.objects.all().delete()
    return exposure_evaluate_pending()
