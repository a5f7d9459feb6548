"""`make bench`: run every benchmark one after the other at its documented size and print its figures.

    .venv/bin/python bench/run_all.py                 # all, real data from ../shared/data
    .venv/bin/python bench/run_all.py fleet catalog   # some
    .venv/bin/python bench/run_all.py --data /srv/uus-bench-data

Each benchmark is an ordinary script under bench/<area>/ that can also be run alone with more options
(see its --help); this runner only fixes the sizes that docs/performance.md reports.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# area -> (script, arguments, whether it reads the real data directory)
BENCHMARKS: dict[str, tuple[str, list[str], bool]] = {
    "catalog": ("catalog/bench_catalog.py", ["--notices", "3000"], True),
    "fleet": ("fleet/matrix.py", [], True),  # 10k and 100k machines, SQLite and PostgreSQL
    "exposure": ("exposure/bench_exposure.py", [], True),
    "repos": ("repos/bench_repos.py", [], True),
    "deployments": ("deployments/bench_deployments.py", [], False),
    "directory": ("directory/bench_directory.py", ["--computers", "50000", "--ous", "500"], False),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("areas", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    ap.add_argument("--data", default=None, help="real data directory (default ../shared/data)")
    args = ap.parse_args(argv)
    unknown = [a for a in args.areas if a not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    failed = []
    for area in args.areas or list(BENCHMARKS):
        script, extra, reads_data = BENCHMARKS[area]
        path = HERE / script
        if not path.exists():
            print(f"== {area}: {path} is missing", flush=True)
            failed.append(area)
            continue
        cmd = [sys.executable, str(path), *extra]
        if reads_data and args.data:
            cmd += ["--data", args.data]
        print(f"== {area}: {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"== {area}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(area)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
