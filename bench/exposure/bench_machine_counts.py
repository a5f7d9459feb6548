"""What the machine count triggers (uus.exposure.machine_counts) cost the writes they watch.

    .venv/bin/python bench/exposure/bench_machine_counts.py [--machines 50000] [--database-url postgres://…]

In a scratch database (SQLite by default, or an empty PostgreSQL database), with the triggers and then without
them: a bulk insert of `--machines` machines of one group (one transaction), a queryset update of their kernel
(every machine moves to another group), and of their `last_seen` (what a check-in writes: no group changes); then
2,000 single-row UPDATE-and-commit of `last_seen` and kernel, as the agent path writes them, with the triggers, and
on PostgreSQL also with an extra statement-level trigger with transition tables (the alternative the row trigger's
WHEN clause avoids).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import django_in_process


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machines", type=int, default=50_000)
    ap.add_argument("--database-url", help="PostgreSQL URL (an empty database); default: SQLite in a scratch dir")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="uus-bench-counts-"))
    django_in_process(work, args.database_url)
    from django.db import connection, transaction
    from uus.exposure import machine_counts
    from uus.inventory.models import Machine
    from uus.inventory.tests.factories import machine_make

    print(f"database: {connection.vendor}; {args.machines:,} machines of one group per bulk statement")
    set_id = machine_make("seed", packages=[("x", "amd64", "1", "x", "1", "installed")]).package_set_id

    def bulk(tag: str) -> tuple[float, float, float]:
        machines = [
            Machine(
                hostname=f"{tag}{i}",
                client_id=f"{tag}{i}",
                secret_hash="0" * 32,
                release="22.04",
                kernel="5.15.0-60-generic",
                package_set_id=set_id,
            )
            for i in range(args.machines)
        ]
        out = []
        for write in (
            lambda: Machine.objects.bulk_create(machines, batch_size=5000),
            lambda: Machine.objects.filter(hostname__startswith=tag).update(kernel="5.15.0-91-generic"),
            lambda: Machine.objects.filter(hostname__startswith=tag).update(last_seen=None),
        ):
            t0 = time.perf_counter()
            with transaction.atomic():
                write()
            out.append(time.perf_counter() - t0)
        return out[0], out[1], out[2]

    def single_rows(tag: str, n: int = 2000) -> tuple[float, float]:
        ids = list(Machine.objects.filter(hostname__startswith=tag).values_list("id", flat=True)[:n])
        out = []
        for sql, value in (
            ("UPDATE inventory_machine SET last_seen = %s WHERE id = %s", None),
            ("UPDATE inventory_machine SET kernel = %s WHERE id = %s", "5.15.0-92-generic"),
        ):
            with connection.cursor() as cur:
                t0 = time.perf_counter()
                for pk in ids:
                    with transaction.atomic():
                        cur.execute(sql, [value, pk])
                out.append((time.perf_counter() - t0) / len(ids) * 1e6)
        return out[0], out[1]

    with_triggers = bulk("a")
    rows_with = single_rows("a")
    machine_counts.uninstall()
    without = bulk("b")
    rows_without = single_rows("b")
    machine_counts.ensure()
    for label, (ins, kernel, seen) in (("with the triggers", with_triggers), ("without", without)):
        print(f"{label:18} bulk insert {ins:.2f} s, kernel update {kernel:.2f} s, last_seen update {seen:.2f} s")
    for label, (seen, kernel) in (("with the triggers", rows_with), ("without", rows_without)):
        print(f"{label:18} single-row UPDATE + commit: last_seen {seen:.0f} µs, kernel {kernel:.0f} µs")
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                """CREATE FUNCTION bench_statement_count() RETURNS trigger LANGUAGE plpgsql AS $$
                   DECLARE g record; BEGIN
                   FOR g IN SELECT o.package_set_id, COUNT(*) FROM old_rows o JOIN new_rows n ON n.id = o.id
                       WHERE o.kernel IS DISTINCT FROM n.kernel OR o.release IS DISTINCT FROM n.release
                          OR o.package_set_id IS DISTINCT FROM n.package_set_id
                          OR o.is_revoked IS DISTINCT FROM n.is_revoked GROUP BY 1 LOOP END LOOP;
                   RETURN NULL; END $$"""
            )
            cur.execute(
                "CREATE TRIGGER bench_statement_count AFTER UPDATE ON inventory_machine "
                "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION bench_statement_count()"
            )
        seen, _ = single_rows("a")
        print(f"plus a statement-level update trigger with transition tables: last_seen {seen:.0f} µs")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
