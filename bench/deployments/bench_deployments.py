"""Deployments benchmark: jobs delivered and results recorded per second with N simulated machines.

    .venv/bin/python bench/deployments/bench_deployments.py                      # 10,000 machines, SQLite
    .venv/bin/python bench/deployments/bench_deployments.py --machines 2000 --database-url postgres://...

Each machine gets a real Debian 12 inventory (package names and versions from bookworm's Packages index
in the data folder, default ../shared/data) with jq and libjq1 one security update behind. The ring's
fix is approved, then:

1. `deployment_create(target="ring:production")`: one job per machine, each computed from that
   machine's inventory and the ring's approvals (the time to start 10k machines at once);
2. delivery: for every machine, the check-in hook `jobs_for_machine` in its own transaction, as the
   agent API calls it;
3. results: for every machine, `job_results_record` with a real-shaped result (two package changes),
   in its own transaction, then the same result again (an agent resending before its ack arrived).

The rates are of these server functions alone (no HTTP, authentication or inventory handling; the
fleet benchmark measures whole check-ins). Run on whatever else the host is doing: on a shared
2-core machine the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import lzma
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "server"))

from common import data_dir  # noqa: E402

OLD, NEW = "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"


def real_packages(data: Path, n: int) -> list[tuple[str, str, str]]:
    """(name, version, source) of n real bookworm packages (deterministic choice)."""
    path = data / "debian-packages" / "bookworm" / "bookworm_main_binary-amd64_Packages.xz"
    if not path.exists():
        sys.exit(f"missing {path}: pass --data PATH (the shared/data folder)")
    rows, cur = [], {}
    for line in lzma.open(path, "rt", encoding="utf-8"):
        if line == "\n":
            if cur.get("Package") and cur.get("Architecture") == "amd64":
                rows.append((cur["Package"], cur["Version"], cur.get("Source", cur["Package"]).split(" ")[0]))
            cur = {}
        elif ": " in line and not line.startswith(" "):
            k, v = line.rstrip("\n").split(": ", 1)
            cur[k] = v
    random.Random(7).shuffle(rows)
    return [r for r in rows if r[0] not in ("jq", "libjq1")][:n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=10_000)
    ap.add_argument("--packages", type=int, default=300, help="packages per machine (real bookworm ones)")
    ap.add_argument("--variants", type=int, default=20, help="distinct inventories across the fleet")
    ap.add_argument("--data", default=None, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--profile", action="store_true", help="print the top functions of the results phase")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    scratch = Path(tempfile.mkdtemp(prefix="uus-bench-deploy-"))
    os.environ.update(
        {"UUS_DATA_DIR": str(scratch), "UUS_LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "uus.settings"}
    )
    if args.database_url:
        os.environ["UUS_DATABASE_URL"] = args.database_url
    from uus.cli.main import setup_django

    setup_django()
    from django.db import transaction
    from uus.agentapi import services as agentapi
    from uus.approvals import selectors as approvals
    from uus.approvals import services as approval_services
    from uus.catalog.models import ArchivePackage, Upstream, UpstreamIndex
    from uus.core.debversion import version_key
    from uus.deployments import selectors, services
    from uus.inventory import packages as pk
    from uus.inventory import services as inventory

    base = real_packages(data, args.packages)
    print(f"{args.machines} machines, {args.packages} real packages each, {args.variants} distinct inventories")
    up = Upstream.objects.create(name="deb", url="http://127.0.0.1:9/debian", keyring="/none")
    idx = UpstreamIndex.objects.create(
        upstream=up,
        suite="bookworm-security",
        codename="bookworm",
        pocket="security",
        component="main",
        architecture="amd64",
    )
    for name in ("jq", "libjq1"):
        ArchivePackage.objects.create(
            index=idx, name=name, version=NEW, version_key=version_key(NEW), architecture="amd64", source="jq",
            source_version=NEW, source_version_key=version_key(NEW), sha256="0" * 64, filename=f"pool/{name}.deb",
        )  # fmt: skip
    variants = []
    for v in range(args.variants):
        entries = [(n, "amd64", ver, src, ver, "installed") for n, ver, src in base[v:]]
        entries += [("jq", "amd64", OLD, "jq", OLD, "installed"), ("libjq1", "amd64", OLD, "jq", OLD, "installed")]
        entries.sort(key=lambda e: (e[0], e[1]))
        variants.append((pk.inventory_hash(entries), entries))

    t0 = time.perf_counter()
    _, key = inventory.enrollment_token_create(comment="bench")
    machines = []
    for i in range(args.machines):
        facts = {
            "hostname": f"m{i:05d}", "machine_id": f"{i:032x}", "architecture": "amd64",
            "os": {"id": "debian", "version_id": "12", "version_codename": "bookworm", "pretty_name": "Debian 12"},
        }  # fmt: skip
        m = inventory.machine_register(token=key, facts=facts, agent_version="bench").machine
        h, entries = variants[i % len(variants)]
        inventory.inventory_apply_full(machine=m, inventory_hash=h, entries=entries)
        machines.append(m)
    took = time.perf_counter() - t0
    print(f"setup: {args.machines} machines registered with inventories in {took:.1f} s (not a figure)")

    prod = approvals.ring_get("production")
    approval_services.approvals_set_bulk(ring=prod, items=[("jq", NEW), ("libjq1", NEW)], state="approved")
    # The approval queued a publish of the ring; install jobs are held until it ran (as in production).
    from uus.jobs.worker import Worker

    worker = Worker("bench", run_schedules=False)
    while worker.run_once():
        pass

    t0 = time.perf_counter()
    d = services.deployment_create(target="ring:production")
    t_create = time.perf_counter() - t0
    counts = selectors.deployment_counts(d)
    assert counts["queued"] == args.machines, counts
    print(f"deployment_create: {args.machines} jobs computed and queued in {t_create:.2f} s "
          f"({args.machines / t_create:,.0f} machines/s)")  # fmt: skip

    import cProfile
    import pstats

    jobs = {}
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    for m in machines:
        with transaction.atomic():
            jobs[m.pk] = agentapi.jobs_for_machine(m)
    t_deliver = time.perf_counter() - t0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    assert all(len(j) == 1 and j[0]["params"]["packages"] == [f"jq={NEW}", f"libjq1={NEW}"] for j in jobs.values())
    print(f"delivery: {args.machines} jobs in {t_deliver:.2f} s ({args.machines / t_deliver:,.0f} jobs delivered/s)")

    def result(job_id):
        return {
            "job_id": job_id, "status": "succeeded", "error": None, "exit_code": 0,
            "output": "$ apt-get install jq\n" + "Unpacking jq ...\n" * 20,
            "started_at": "2026-11-25T10:00:00Z", "finished_at": "2026-11-25T10:00:04Z",
            "packages": [{"name": n, "architecture": "amd64", "before": OLD, "after": NEW} for n in ("jq", "libjq1")],
            "reboot_required": False,
        }  # fmt: skip

    for label in ("results", "repeated results"):
        prof = cProfile.Profile() if args.profile and label == "results" else None
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        for m in machines:
            with transaction.atomic():
                acked = agentapi.job_results_record(m, [result(jobs[m.pk][0]["id"])])
            assert len(acked) == 1
        t = time.perf_counter() - t0
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        print(f"{label}: {args.machines} recorded in {t:.2f} s ({args.machines / t:,.0f} results/s)")
    d.refresh_from_db()
    counts = selectors.deployment_counts(d)
    assert d.state == "completed" and counts["succeeded"] == args.machines, (d.state, counts)
    print(f"deployment {d.pk}: {d.state}, {counts['succeeded']} succeeded; scratch data in {scratch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
