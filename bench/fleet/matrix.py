"""The fleet benchmark's whole table in one command: each fleet size on the embedded default (SQLite)
and on PostgreSQL, each run in a fresh data directory and, for PostgreSQL, a fresh throwaway cluster.

    .venv/bin/python bench/fleet/matrix.py                          # 10,000 and 100,000 machines
    .venv/bin/python bench/fleet/matrix.py --sizes 1000 --databases sqlite

Every cell is one `bench/fleet/run.py --json` process (its own figures are printed as it goes), so a
run measures exactly what run.py measures alone; the table at the end puts them side by side.
PostgreSQL comes from scripts/pg-throwaway (Debian's postgresql, fsync off: its writes are cheaper
than a production server's, which the table says).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PG = REPO / "scripts" / "pg-throwaway"

ROWS = [
    ("registrations/s", "registrations/s"),
    ("unchanged check-ins/s", "unchanged check-ins/s"),
    ("full inventory uploads/s", "full inventory uploads/s"),
    ("check-ins after an upgrade/s", "check-ins after an upgrade/s"),
    ("delta uploads/s", "delta uploads/s"),
    ("unchanged check-ins/s per CPU-second", "unchanged check-ins/s per CPU-second of the server process"),
    ("full uploads/s per CPU-second", "full inventory uploads/s per CPU-second of the server process"),
    ("bytes per machine beyond distinct packages", "database bytes per machine beyond distinct packages"),
    ("  machine and inventory", "  of which machine and inventory (no history, no message ids)"),
    ("  history bytes per change", "  history bytes per change row"),
    ("  message-id bytes per machine", "  message-id bytes per machine (pruned after an hour)"),
    ("distinct inventories stored (sets)", "package sets"),
    ("peak memory MiB (server + simulator)", None),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cell(machines: int, database: str, args) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"uus-fleet-{database}-{machines}-"))
    work.chmod(0o755)  # as root, the throwaway cluster runs as the postgres user, which must reach it
    cmd = [sys.executable, str(HERE / "run.py"), "--machines", str(machines), "--json", "--data", args.data]
    cmd += ["--data-dir", str(work / "var"), "--check-in-rounds", str(args.check_in_rounds)]
    pg_dir = work / "pg"
    try:
        if database == "postgresql":
            url = subprocess.run(
                [str(PG), "start", str(pg_dir), str(free_port())], check=True, capture_output=True, text=True
            ).stdout.strip()
            cmd += ["--database-url", url]
        print(f"== {machines} machines on {database}: {' '.join(cmd)}", flush=True)
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        lines = out.stdout.splitlines()
        sys.stdout.write("".join(line + "\n" for line in lines if not line.startswith("{")))
        if out.returncode:
            return {"error": f"exit {out.returncode}"}
        return json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    finally:
        if database == "postgresql":
            subprocess.run([str(PG), "stop", str(pg_dir)], check=False)
        subprocess.run(["rm", "-rf", str(work)], check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000", help="fleet sizes, comma-separated (default 10000,100000)")
    p.add_argument("--databases", default="sqlite,postgresql", help="sqlite and/or postgresql")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--check-in-rounds", type=int, default=1, help="unchanged check-ins per machine (default 1)")
    args = p.parse_args(argv)
    if not (Path(args.data) / "debian-packages").is_dir():
        raise SystemExit(f"{args.data}/debian-packages is missing: pass --data PATH to the shared data folder")
    cells = [(int(n), db) for n in args.sizes.split(",") for db in args.databases.split(",")]
    results = {cell: run_cell(*cell, args) for cell in cells}
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2-core machine: above 1.5 the rates are pessimistic)")
    header = ["figure", *[f"{n:,} {db}" for n, db in cells]]
    table = [header]
    for label, key in ROWS:
        row = [label]
        for cell in cells:
            r = results[cell]
            if "error" in r:
                row.append(r["error"])
                continue
            if key is None:
                key_mem = next((k for k in r if k.startswith("peak memory")), "")
                row.append(str(r.get(key_mem, "")))
            else:
                row.append(str(r.get(key, "")))
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
