"""UUS and patchman side by side: the same N inventories (default 1,000) received and fully processed.

    python3 -m venv /tmp/patchman-venv && /tmp/patchman-venv/bin/pip install patchman   # once, never in .venv
    .venv/bin/python bench/fleet/patchman_compare.py --patchman-python /tmp/patchman-venv/bin/python

patchman (PyPI `patchman`, furlongm/patchman) pins its own Django (4.2), so it runs in its own virtualenv,
in a child process: this script runs itself there with --patchman-worker. Both servers get the same
inventories from fleet.py (real Debian package sets, ~2,000 packages each), both on a fresh SQLite
database, both through their own Django WSGI handler called in-process, and only the time inside the
handler is counted:

- UUS: one full inventory upload per machine (POST /api/agent/v1/inventory/, already registered). The
  answer comes after everything is stored: packages, chunks, the machine's set, history.
- patchman: one client report per machine (POST /reports/upload/, protocol 1 text, as patchman-client
  sends it for dpkg), with its Celery task run eagerly inside the request (CELERY_TASK_ALWAYS_EAGER), so
  the answer comes after Report.process(): host, packages, repos and its update search (no repositories
  are configured, as in a fresh install; that search is then cheap).

It prints both rates and the ratio, inventories fully processed per second, UUS over patchman.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# -- patchman side: runs under patchman's own Python ------------------------------------------------

PATCHMAN_SETTINGS = """
from patchman.settings import *  # noqa: F403 - patchman's own settings, then what a benchmark needs

DATABASES = {{"default": {{"ENGINE": "patchman.sqlite3", "NAME": {db!r}, "OPTIONS": {{"timeout": 30}}}}}}
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
SECRET_KEY = "patchman-bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
LOGGING = {{"version": 1, "disable_existing_loggers": False, "root": {{"level": "ERROR"}}}}
"""


def deb_version_parts(version: str) -> tuple[str, str, str]:
    """epoch, upstream version, Debian revision: the fields patchman stores a dpkg version in."""
    epoch, sep, rest = version.partition(":")
    if not sep:
        epoch, rest = "", version
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def patchman_worker(reports_path: Path, workdir: Path, sample: int = 0) -> dict:
    settings_dir = workdir / "settings"
    settings_dir.mkdir()
    (settings_dir / "bench_patchman_settings.py").write_text(PATCHMAN_SETTINGS.format(db=str(workdir / "pm.db")))
    sys.path.insert(0, str(settings_dir))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_patchman_settings"
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from hosts.models import Host
    from reports.models import Report
    from util.logging import set_quiet_mode

    set_quiet_mode(True)  # no progress bars, as `patchman -q`

    app = WSGIHandler()
    reports = json.loads(reports_path.read_text())[:sample] if sample else json.loads(reports_path.read_text())
    busy = 0.0
    wall0 = time.perf_counter()
    for fields in reports:
        from urllib.parse import urlencode

        body = urlencode(fields).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/reports/upload/",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "bench",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": "patchman-client",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
        answer: list[str] = []
        t0 = time.perf_counter()
        result = app(environ, lambda s, h, e=None, answer=answer: answer.append(s))
        b"".join(result)
        busy += time.perf_counter() - t0
        if not answer[0].startswith(("200", "204")):
            raise SystemExit(f"patchman answered {answer[0]}")
    wall = time.perf_counter() - wall0
    processed = Report.objects.filter(processed=True).count()
    host_packages = sum(h.packages.count() for h in Host.objects.all())
    import django as dj

    return {
        "reports": len(reports),
        "processed": processed,
        "hosts": Host.objects.count(),
        "host package links": host_packages,
        "seconds in handler": busy,
        "wall seconds": wall,
        "django": dj.get_version(),
    }


# -- UUS side and the comparison: runs under UUS's .venv ----------------------------------------------


# What patchman-client sends as "os" on Debian: the /etc/debian_version point release, then the codename.
DEBIAN_POINT_RELEASE = {"12": "12.12", "13": "13.1"}


def patchman_report(spec, entries, releases) -> dict:
    """The form patchman-client posts for a Debian machine (protocol 1)."""
    r = releases[spec.release]
    lines = []
    for name, arch, version, _source, _sv, status in entries:
        if status != "installed":
            continue  # patchman-client reports installed packages only
        epoch, upstream, revision = deb_version_parts(version)
        lines.append(f"'{name}' '{epoch}' '{upstream}' '{revision}' '{arch}' 'deb'")
    return {
        "host": f"{spec.hostname}.fleet.example.org",
        "os": f"Debian {DEBIAN_POINT_RELEASE.get(spec.release, spec.release + '.0')} ({r.codename})",
        "kernel": "6.1.0-40-amd64",
        "arch": "x86_64",
        "protocol": "1",
        "tags": spec.role,
        "reboot": "False",
        "packages": "\n".join(lines) + "\n",
        "repos": "".join(  # as patchman-client turns `apt-cache policy` into its repo lines
            f"'deb' 'Debian {suite} main amd64' '500' '{url}/dists/{suite}/main/binary-amd64'\n"
            for suite, url in (
                (r.codename, "http://deb.debian.org/debian"),
                (f"{r.codename}-security", "http://security.debian.org/debian-security"),
            )
        ),
    }


def uus_uploads(machines, releases, inventories) -> dict:
    """Register the machines (not timed), then time one full upload each on a fresh embedded UUS."""
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(REPO / "server"))
    from fleet import run as R

    os.environ["UUS_DATA_DIR"] = tempfile.mkdtemp(prefix="uus-pmcmp-")
    os.environ.pop("UUS_DATABASE_URL", None)
    os.environ.setdefault("UUS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from uus.inventory import services
    from uus.inventory.models import Machine as MachineRow
    from uus.inventory.models import Package

    _, enroll = services.enrollment_token_create(comment="patchman comparison")
    transport = R.InProcess()
    sims = [R.Machine(s, releases) for s in machines]
    for m in sims:
        status, d, _ = transport.post("/api/agent/v1/register/", m.register_body(enroll))
        assert status == 201, d
        m.client_id, m.secret, m.token = d["client_id"], d["secret"], d["exchange_token"]
    busy = 0.0
    wall0 = time.perf_counter()
    for m, entries in zip(sims, inventories, strict=True):
        h = R.inv_hash(entries)
        body = m.full_body(entries, h)
        status, d, elapsed = transport.post("/api/agent/v1/inventory/", body, m.auth)
        if status != 200:
            raise SystemExit(f"UUS answered {status}: {d}")
        busy += elapsed
    wall = time.perf_counter() - wall0
    return {
        "inventories": len(sims),
        "machines with an inventory": MachineRow.objects.filter(package_set__isnull=False).count(),
        "distinct packages": Package.objects.count(),
        "seconds in handler": busy,
        "wall seconds (with building the messages)": wall,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inventories", type=int, default=1000, help="machines / inventories (default 1000)")
    p.add_argument("--patchman-python", default="/tmp/patchman-venv/bin/python", help="python of patchman's venv")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="shared data (default ../shared/data)")
    p.add_argument(
        "--patchman-sample",
        type=int,
        default=0,
        help="patchman processes only the first N of the inventories (it takes seconds per report); default all",
    )
    p.add_argument("--patchman-worker", metavar="REPORTS_JSON", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = p.parse_args(argv)

    if args.patchman_worker:  # inside patchman's venv
        with tempfile.TemporaryDirectory(prefix="patchman-bench-") as work:
            print(json.dumps(patchman_worker(Path(args.patchman_worker), Path(work), args.patchman_sample)))
        return 0

    if not Path(args.patchman_python).exists():
        raise SystemExit(
            f"{args.patchman_python} does not exist: python3 -m venv /tmp/patchman-venv && "
            "/tmp/patchman-venv/bin/pip install patchman (patchman needs its own Django; never in .venv)"
        )
    sys.path.insert(0, str(HERE.parent))
    from fleet import fleet as F

    releases = F.load_releases(Path(args.data))
    specs = F.machine_specs(args.inventories, releases)
    inventories = [F.inventory(s, releases) for s in specs]
    sizes = [len(i) for i in inventories]
    print(
        f"{len(specs)} inventories, {min(sizes)}-{max(sizes)} packages (avg {sum(sizes) // len(sizes)}), "
        f"{len({tuple(i) for i in inventories})} distinct",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="patchman-reports-") as tmp:
        reports = Path(tmp) / "reports.json"
        reports.write_text(
            json.dumps([patchman_report(s, i, releases) for s, i in zip(specs, inventories, strict=True)])
        )
        t = time.perf_counter()
        child = subprocess.run(
            [
                args.patchman_python,
                __file__,
                "--patchman-worker",
                str(reports),
                "--patchman-sample",
                str(args.patchman_sample),
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if child.returncode != 0:
            raise SystemExit(f"patchman failed:\n{child.stderr[-4000:]}")
        pm = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"patchman done in {time.perf_counter() - t:.0f}s", flush=True)

    uus = uus_uploads(specs, releases, inventories)
    uus_rate = uus["inventories"] / uus["seconds in handler"]
    pm_rate = pm["processed"] / pm["seconds in handler"]
    figures = {
        "inventories": len(specs),
        "UUS inventories fully processed/s": round(uus_rate, 1),
        "patchman reports fully processed/s": round(pm_rate, 3),
        "ratio UUS / patchman": round(uus_rate / pm_rate, 1),
        "UUS": uus,
        "patchman": pm,
    }
    for k, v in figures.items():
        print(f"{k:<38}  {v}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
