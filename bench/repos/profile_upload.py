"""Where a bulk upload and the publish after it spend their time, in this process (no `uus` child).

    .venv/bin/python bench/repos/profile_upload.py --debs DIR [--move] [--top 20] [--cprofile]

DIR holds the .debs (bench_repos.py --work W leaves 5,000 in W/a/debs). Prints the wall time of each
phase of `packages_upload_many` and of `repo_publish` (measured by wrapping the functions that do the
work), and with --cprofile the functions with the highest own time of each (the worker processes that
check a large batch are not in that profile: their phase is "checks"). Phases are timed without the
profiler unless --cprofile is given, which slows Python code down.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE.parents[1] / "server"


class Phases:
    """Wall seconds per wrapped function."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner, name: str, label: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(owner, name, timed)

    def report(self, title: str, total: float) -> None:
        print(f"{title}: {total:.2f} s")
        for label, seconds in self.seconds.items():
            print(f"    {label:58} {seconds:6.2f} s")
        print(f"    {'the rest':58} {total - sum(self.seconds.values()):6.2f} s")
        self.seconds = {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", required=True, help="directory of .deb files (e.g. bench_repos.py's W/a/debs)")
    ap.add_argument("--top", type=int, default=20, help="functions listed per profile with --cprofile")
    ap.add_argument("--cprofile", action="store_true", help="also print the cProfile of each step")
    ap.add_argument("--move", action="store_true", help="upload copies of the files with move=True (hard links)")
    args = ap.parse_args()
    debs = sorted(str(p) for p in Path(args.debs).glob("*.deb"))
    if not debs:
        sys.exit(f"no .deb files in {args.debs}")
    sys.path.insert(0, str(SERVER))

    with tempfile.TemporaryDirectory(prefix="uus-profile-upload-") as tmp:
        os.environ["UUS_DATA_DIR"] = str(Path(tmp) / "srv")
        os.environ["UUS_LOG_LEVEL"] = "WARNING"
        os.environ.pop("UUS_DATABASE_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from uus.approvals.models import Ring
        from uus.repos import debfile, publish, services, signing

        services.signing_key_current()  # made before, as the other tools' keys are
        if args.move:  # copies of their own to hand over, made before the clock starts
            incoming = Path(tmp) / "incoming"
            incoming.mkdir()
            for deb in debs:
                shutil.copyfile(deb, incoming / Path(deb).name)
            debs = sorted(str(p) for p in incoming.iterdir())
            os.sync()
        phases = Phases()
        phases.wrap(services, "_checked", "checks: our parser + staging (worker processes)")
        phases.wrap(debfile.SecondOpinion, "_apt_ftparchive", "apt-ftparchive: what is left after our checks")
        phases.wrap(debfile.SecondOpinion, "_dpkg_parse", "dpkg --merge-avail of every control paragraph")
        phases.wrap(services, "_rows_named", "rows already there (SELECT)")
        phases.wrap(services, "pool_place", "placing into the pool (renames)")
        phases.wrap(services, "sync_files", "sync")
        phases.wrap(services, "_rows_insert", "INSERT of the new rows")
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        if args.cprofile:
            profile.enable()
        outcomes = services.packages_upload_many(paths=debs, publish=False, move=args.move)
        profile.disable()
        phases.report(f"upload of {len(debs)} files ({sum(o.created for o in outcomes)} new)", time.perf_counter() - t0)
        if args.cprofile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)

        phases.wrap(services, "ring_plan", "ring_plan: rows and upstream stanzas")
        phases.wrap(publish, "write_packages", "Packages, .gz and .xz")
        phases.wrap(signing, "sign_release", "gpg: InRelease and Release.gpg")
        phases.wrap(publish, "_fsync_tree", "fsync of the new generation")
        phases.wrap(signing, "export_public_key", "gpg: key.asc")
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        if args.cprofile:
            profile.enable()
        repo = services.repo_publish(ring=Ring.objects.get(name="production"))
        profile.disable()
        phases.report(f"publish of production ({repo.package_count} packages)", time.perf_counter() - t0)
        if args.cprofile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
        signing.signing_agent_stop(services.gnupg_home())


if __name__ == "__main__":
    main()
