"""Exposure benchmark: query latency at fleet scale, and re-evaluation after one notice import.

    .venv/bin/python bench/exposure/bench_exposure.py [--data ../shared/data] [--machines 100000] [--sets 2000]
                                                      [--database-url postgres://…] [--queries 40]

Builds a fleet in a scratch database: `--sets` distinct package sets of real Ubuntu 22.04 versions (the
96 packages of a 22.04.2 server ISO, plus for each source a notice names for 22.04 one real version from
that entry's own `versions` history, plus 400 site packages shared by all sets and one per-set package),
inserted directly through inventory's models, and `--machines` machines spread over them, as real fleets
share inventories. Half of the sets carry a vulnerable openssh, the other half the fixed one.

Then, timed separately:
0. the machine counts per (set, release, kernel, ring) that the database triggers kept while the machines
   were inserted, compared with a recount (what `uus exposure rebuild` does), and the recount's time;
1. evaluation of every set against every notice but USN-6859-1 (openssh);
2. importing USN-6859-1, which affects half the fleet, with its re-evaluation (the catalog's signal);
3. p50/p95 of a CVE query and of a package query as the API runs them (selectors.search: counts per
   priority and status over every affected machine, from the machine counts, and the findings of the
   first page of 100 machines),
   and as the web page runs it (the same, plus the count of machines already fixed);
4. the full per-machine list of one CVE (`uus cve ID --json` builds this), and the dashboard overview;
5. one machine's changed inventory (curl upgraded): exposure's re-evaluation of the changed packages only, and
   of the whole new set (rolled back, so the fleet stays as it was).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "server"))
from common import data_dir, django_in_process

ISO_INDEX = "ubuntu-packages/jammy-22.04-server-iso/dists/jammy/main/binary-amd64/Packages.gz"
OPENSSH_NOTICE = "USN-6859-1.json"
OLD_SSH, FIXED_SSH = "1:8.9p1-3ubuntu0.1", "1:8.9p1-3ubuntu0.10"


def iso_entries(path: Path) -> list[tuple]:
    out, fields = [], {}
    for line in [*gzip.decompress(path.read_bytes()).decode().splitlines(), ""]:
        if not line.strip():
            if fields.get("Package"):
                m = re.fullmatch(r"(\S+)(?: \((\S+)\))?", fields.get("Source", fields["Package"]))
                out.append(
                    (
                        fields["Package"],
                        fields["Architecture"],
                        fields["Version"],
                        m.group(1),
                        m.group(2) or fields["Version"],
                        "installed",
                    )
                )
            fields = {}
        elif not line.startswith(" ") and ":" in line:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return out


def notice_choices(osv: Path) -> list[list[tuple]]:
    """For each (22.04 source, notice) one list of alternative binary entries, one per real version."""
    out = []
    for p in sorted(osv.glob("*/*.json")):
        if p.name == OPENSSH_NOTICE:
            continue
        doc = json.loads(p.read_text())
        for e in doc.get("affected", []):
            if e["package"]["ecosystem"] != "Ubuntu:22.04:LTS" or e["package"]["name"].startswith("linux"):
                continue
            binaries = [b["binary_name"] for b in (e.get("ecosystem_specific") or {}).get("binaries", [])][:2]
            versions = (e.get("versions") or [])[-4:]
            src = e["package"]["name"]
            out.append([[(b, "amd64", v, src, v, "installed") for b in binaries or [src]] for v in versions])
    return [c for c in out if c]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="the shared real-data folder (default ../shared/data)")
    ap.add_argument("--machines", type=int, default=100_000)
    ap.add_argument("--sets", type=int, default=2000, help="distinct inventories in the fleet")
    ap.add_argument("--queries", type=int, default=40, help="repetitions per query kind")
    ap.add_argument("--database-url", help="PostgreSQL URL (an empty database); default: SQLite in a scratch dir")
    ap.add_argument("--keep", action="store_true", help="keep the scratch data directory")
    args = ap.parse_args()

    data = data_dir(args.data)
    osv = data / "usn-osv" / "osv"
    iso = data / ISO_INDEX
    for need in (osv / "usn" / OPENSSH_NOTICE, iso):
        if not need.exists():
            sys.exit(f"benchmark data missing: {need} (pass --data PATH to the shared/data folder)")

    work = Path(tempfile.mkdtemp(prefix="uus-bench-exposure-"))
    django_in_process(work, args.database_url)
    from django.db import connection, transaction
    from uus.catalog.services import notices_import
    from uus.catalog.signals import notices_changed
    from uus.exposure import machine_counts, selectors, services
    from uus.exposure.models import EvaluatedSet, Finding, MachineCount
    from uus.inventory import packages as pk
    from uus.inventory.models import Machine
    from uus.inventory.services import package_set_get_or_create

    print(f"database: {connection.vendor}; machines {args.machines:,}; distinct package sets {args.sets:,}")
    print("(a 2-core machine shared with other engineers: figures are pessimistic)")

    # -- the fleet ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    base = [e for e in iso_entries(iso) if e[0] not in ("openssh-server", "openssh-sftp-server")]
    site = [(f"site-lib{i:03d}", "amd64", "1.0-1", f"site-lib{i:03d}", "1.0-1", "installed") for i in range(400)]
    choices = notice_choices(osv)
    set_ids = []
    receivers = notices_changed.receivers[:]
    for i in range(args.sets):
        ssh_version = OLD_SSH if i < args.sets // 2 else FIXED_SSH
        ssh = [
            (n, "amd64", ssh_version, "openssh", ssh_version, "installed") for n in ("openssh-server", "openssh-client")
        ]
        picked = [e for j, c in enumerate(choices) for e in c[(i // (j + 1)) % len(c)]]
        own = [(f"site-host-config-{i}", "all", "1.0", f"site-host-config-{i}", "1.0", "installed")]
        entries = sorted({(e[0], e[1]): e for e in [*base, *site, *picked, *ssh, *own]}.values())
        with transaction.atomic():
            set_ids.append(package_set_get_or_create(inventory_hash=pk.inventory_hash(entries), entries=entries).pk)
    sets_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = []
    for m in range(args.machines):
        batch.append(
            Machine(
                hostname=f"host-{m:07d}",
                release="22.04",
                os_id="ubuntu",
                os_version_id="22.04",
                kernel="5.15.0-60-generic",
                package_set_id=set_ids[m % len(set_ids)],
                client_id=f"m-bench-{m}",
                secret_hash="0" * 32,
            )
        )
        if len(batch) == 10_000:
            Machine.objects.bulk_create(batch)
            batch = []
    Machine.objects.bulk_create(batch)
    machines_s = time.perf_counter() - t0
    print(
        f"fleet built: {len(set_ids):,} sets in {sets_s:.1f} s, {args.machines:,} machines in {machines_s:.1f} s "
        "(the machine count triggers included)"
    )
    kept = sorted(MachineCount.objects.values_list("package_set_id", "release", "kernel", "ring_id", "machines"))
    t0 = time.perf_counter()
    groups = machine_counts.recount()
    recount_s = time.perf_counter() - t0
    recounted = sorted(MachineCount.objects.values_list("package_set_id", "release", "kernel", "ring_id", "machines"))
    print(
        f"0. machine counts kept by the triggers: {len(kept):,} groups, equal to a recount: {kept == recounted}; "
        f"recount (uus exposure rebuild) {recount_s:.2f} s for {groups:,} groups"
    )

    # -- 1. notices but openssh's, evaluated once over every set ---------------------------------------
    staging = work / "osv-but-openssh"
    for sub in ("usn", "cve"):
        (staging / sub).mkdir(parents=True)
        for p in (osv / sub).glob("*.json"):
            if p.name != OPENSSH_NOTICE:
                shutil.copy(p, staging / sub / p.name)
    notices_changed.receivers = []  # import without re-evaluation; the sets are evaluated once below
    notices_import(str(staging))
    notices_changed.receivers = receivers
    t0 = time.perf_counter()
    n = services.exposure_evaluate_pending()
    seconds = time.perf_counter() - t0
    print(
        f"1. first evaluation of {EvaluatedSet.objects.count():,} (set, release) pairs: {n:,} findings, {seconds:.2f} s"
    )

    # -- 2. one notice affecting half the fleet ------------------------------------------------------
    before = Finding.objects.count()
    t0 = time.perf_counter()
    result = notices_import(str(osv / "usn" / OPENSSH_NOTICE))
    import_s = time.perf_counter() - t0
    affected = selectors.search(selectors.parse_query("USN-6859-1"), limit=1)["summary"]["machines"]
    print(
        f"2. import of USN-6859-1 (+{Finding.objects.count() - before:,} findings) with re-evaluation: "
        f"{import_s:.2f} s; machines now exposed to it: {affected:,} of {args.machines:,} "
        f"(imported={result.imported})"
    )

    if connection.vendor == "postgresql":
        # what autovacuum does on a live server: statistics for the planner, a visibility map for index-only scans
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")

    # -- 3. query latency ------------------------------------------------------------------------------
    def timed(text: str, **kwargs) -> tuple[float, float, dict]:
        q = selectors.parse_query(text)
        selectors.search(q, limit=100, **kwargs)  # warm the database's page cache once
        times = []
        for _ in range(args.queries):
            t = time.perf_counter()
            out = selectors.search(q, limit=100, **kwargs)
            times.append((time.perf_counter() - t) * 1000)
        return percentile(times, 50), percentile(times, 95), out["summary"]

    for label, text, kwargs in (
        ("CVE query (CVE-2024-6387, half the fleet)", "CVE-2024-6387", {}),
        ("CVE query (CVE-2024-7264, curl, the whole fleet)", "CVE-2024-7264", {}),
        ("CVE query as the web page runs it (also counting fixed machines)", "CVE-2024-6387", {"count_fixed": True}),
        (
            "package query (package:openssh-server<1:8.9p1-3ubuntu0.10)",
            "package:openssh-server<1:8.9p1-3ubuntu0.10",
            {},
        ),
        ("package query (package:curl)", "package:curl", {}),
    ):
        p50, p95, s = timed(text, **kwargs)
        print(
            f"3. {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({s['machines']:,} machines, {s['findings']:,} findings)"
        )

    # -- 4. full lists --------------------------------------------------------------------------------
    t0 = time.perf_counter()
    rows = selectors.findings(selectors.parse_query("CVE-2024-6387"))
    print(
        f"4. full per-machine list of CVE-2024-6387 (uus cve --json): {len(rows):,} rows "
        f"in {time.perf_counter() - t0:.2f} s"
    )
    t0 = time.perf_counter()
    overview = selectors.fleet_overview()
    print(
        f"4. dashboard overview: {overview['exposed_machines']:,} exposed machines in {time.perf_counter() - t0:.2f} s"
    )
    # -- 5. one machine's changed inventory: only the changed packages vs the whole new set -------------
    from uus.exposure import receivers
    from uus.inventory.choices import PackageStatus
    from uus.inventory.models import PackageChunkMember
    from uus.inventory.services import inventory_apply_full
    from uus.inventory.signals import inventory_changed

    spent: list[float] = []

    def timed_receiver(sender, machine, changed_package_ids, **kwargs):
        t = time.perf_counter()
        receivers.on_inventory_changed(sender, machine, changed_package_ids, **kwargs)
        spent.append((time.perf_counter() - t) * 1000)

    inventory_changed.disconnect(dispatch_uid="exposure-inventory")
    inventory_changed.connect(timed_receiver, dispatch_uid="bench-exposure-inventory")
    times: dict[str, list[float]] = {"changed packages only": [], "whole set": []}
    limit = services.DELTA_LIMIT
    for i in range(12):
        mode = list(times)[i % 2]
        machine = Machine.objects.get(hostname=f"host-{i:07d}")
        members = PackageChunkMember.objects.filter(chunk__set_chunks__package_set_id=machine.package_set_id)
        entries = sorted(
            (n, a, v + f"+b{i}" if s == "curl" else v, s, sv + f"+b{i}" if s == "curl" else sv, PackageStatus(st).label)
            for n, a, v, s, sv, st in members.values_list(
                "package__name",
                "package__architecture",
                "package__version",
                "package__source",
                "package__source_version",
                "status",
            )
        )
        services.DELTA_LIMIT = limit if mode == "changed packages only" else -1
        with transaction.atomic():
            inventory_apply_full(machine=machine, inventory_hash=pk.inventory_hash(entries), entries=entries)
            transaction.set_rollback(True)  # measure, keep the fleet as it was
        times[mode].append(spent.pop())
    services.DELTA_LIMIT = limit
    for mode, values in times.items():
        print(
            f"5. a machine's changed inventory ({len(entries)} packages, curl upgraded), exposure re-evaluation, "
            f"{mode}: median {percentile(values, 50):.1f} ms of {len(values)}"
        )

    if args.keep or args.database_url:
        print(f"scratch data kept in {work}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
