"""CPU cost of each step of an agent check-in, one call per machine of an existing benchmark database.

    .venv/bin/python bench/fleet/run.py --machines 300 --data-dir /tmp/fleet-300    # once, keeps the database
    .venv/bin/python bench/fleet/check_in_costs.py --data-dir /tmp/fleet-300

Process CPU time, so the figures hold on a busy machine; the hooks are the agentapi.services functions other
apps fill in (jobs, job results, apt configuration), run inside the check-in's transaction.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import django_in_process


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="UUS data directory of a finished run.py --data-dir run")
    p.add_argument("--database-url", default="", help="PostgreSQL URL instead of the data directory's SQLite")
    args = p.parse_args(argv)
    if not (Path(args.data_dir) / "uus.sqlite3").exists() and not args.database_url:
        raise SystemExit(f"{args.data_dir} holds no uus.sqlite3: run bench/fleet/run.py --data-dir first")
    django_in_process(args.data_dir, args.database_url, migrate=False)
    from django.db import transaction
    from uus.agentapi import services as api
    from uus.inventory import services as inventory
    from uus.inventory.models import Machine

    machines = list(Machine.objects.all())
    if not machines:
        raise SystemExit("no machines in this database")

    def cost(label: str, fn) -> None:
        c0 = time.process_time()
        for m in machines:
            with transaction.atomic():
                fn(m)
        ms = (time.process_time() - c0) / len(machines) * 1000
        print(f"{label:52} {ms:6.3f} ms CPU per call", flush=True)

    print(f"{len(machines)} machines")
    cost("empty transaction", lambda m: None)
    cost(
        "credentials lookup (machine_authenticate's query)",
        lambda m: (
            Machine.objects.filter(client_id=m.client_id).only("id", "secret_hash", "is_revoked").order_by()[:1].get()
        ),
    )
    cost("machine_lock (the whole row)", lambda m: inventory.machine_lock(m.pk))
    cost("machine save, 2 fields", lambda m: m.save(update_fields=["last_seen", "updated"]))
    cost("hook job_results_record (no results)", lambda m: api.job_results_record(m, []))
    cost("hook jobs_for_machine", api.jobs_for_machine)
    cost("hook apt_for_machine", api.apt_for_machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
