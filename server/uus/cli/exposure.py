"""`uus cve ID|NOTICE|package:NAME[<VERSION] --json`: every affected machine at once."""

from __future__ import annotations

import csv
import sys


def cve(args) -> int:
    from uus.cli.output import print_json
    from uus.exposure import selectors

    rows = selectors.findings(selectors.parse_query(args.query), include_not_running=args.all)
    if args.json:
        print_json(rows)
    elif args.csv:
        write_csv(rows, sys.stdout)
    else:
        s = selectors.summary(rows)
        print(f"{s['machines']} machines exposed, {s['findings']} findings")
        for r in rows:
            pro = " [Pro]" if r["pro_only"] else ""
            print(
                f"{r['hostname']:28} {r['notice']:16} {r['cve'] or '-':16} {r['package']:28} "
                f"{r['installed_version']:28} -> {r['fixed_version'] or 'no fix'} {r['priority'] or '-'} "
                f"{r['status']}{pro}"
            )
    return 0


CSV_FIELDS = [
    "hostname",
    "release",
    "notice",
    "cve",
    "priority",
    "package",
    "architecture",
    "installed_version",
    "source",
    "installed_source_version",
    "fixed_version",
    "fixed_binary_version",
    "pocket",
    "status",
    "pro_only",
]


def write_csv(rows, out) -> None:
    w = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)


def exposure_rebuild(args) -> int:
    from uus.cli.output import run_job_with_progress
    from uus.exposure import tasks

    job = run_job_with_progress(tasks.exposure_rebuild, locks=["exposure"])
    print(f"{job.result['findings']} findings")
    return 0


def register(sub) -> None:
    p = sub.add_parser("cve", help="machines affected by a CVE, a notice or a package")
    p.add_argument("query", metavar="ID", help="CVE-…, USN-…, UBUNTU-CVE-…, or package:NAME[<VERSION]")
    p.add_argument("--json", action="store_true", help="a JSON array, one object per finding")
    p.add_argument("--csv", action="store_true")
    p.add_argument("--all", action="store_true", help="also list installed kernels that are not running")
    p.set_defaults(func=cve)
    exp = sub.add_parser("exposure", help="exposure findings").add_subparsers(dest="verb", metavar="VERB")
    exp.required = True
    p = exp.add_parser("rebuild", help="recompute every finding from scratch")
    p.set_defaults(func=exposure_rebuild)
