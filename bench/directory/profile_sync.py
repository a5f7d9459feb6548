"""Where a directory sync spends its time: cProfile of one sync in this process (no `uus` child), on the
directory bench_directory.py generates, against a real slapd and a scratch SQLite data directory.

    .venv/bin/python bench/directory/profile_sync.py [--computers 20000] [--top 25]

Prints the wall time of a read alone, of a first sync and of an unchanged second sync, each followed by
the functions with the highest cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE.parents[1] / "server"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--computers", type=int, default=20000)
    ap.add_argument("--top", type=int, default=25, help="functions listed per profile")
    args = ap.parse_args()

    sys.path[:0] = [str(HERE), str(HERE.parent), str(SERVER)]
    import bench_directory as bench

    with tempfile.TemporaryDirectory(prefix="uus-profile-directory-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # slapd may run as another user
        os.environ["UUS_DATA_DIR"] = str(work / "srv")
        os.environ["UUS_LOG_LEVEL"] = "WARNING"
        os.environ.pop("UUS_DATABASE_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
        ldif = work / "bench.ldif"
        bench.generate_ldif(ldif, computers=args.computers, ous=max(2, args.computers // 100))
        template = bench.load_directory(work / "ldap", ldif)

        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from uus.directory import ldapclient, services
        from uus.directory.selectors import directory_config
        from uus.inventory.models import Machine
        from uus.testing.slapd import SlapdServer

        Machine.objects.bulk_create(
            [
                Machine(
                    hostname=bench.hostname(i),
                    fqdn=bench.fqdn(i) or bench.hostname(i),
                    client_id=f"m-{i}",
                    secret_hash="x",
                )
                for i in range(args.computers)
            ],
            batch_size=5000,
        )
        with SlapdServer(config_template=template, suffix=bench.BASE, root_pw=bench.ROOT_PW) as server:
            source = services.directory_source_create(
                name="bench", url=server.url, base_dn=bench.BASE, bind_dn=bench.ROOT_DN, bind_password=bench.ROOT_PW
            )
            t0 = time.perf_counter()
            ldapclient.read_directory(directory_config(source))
            ldapclient.dn_caches_clear()
            print(f"read alone: {time.perf_counter() - t0:.2f} s", flush=True)
            for label in ("first sync", "unchanged sync"):
                profile = cProfile.Profile()
                t0 = time.perf_counter()
                profile.enable()
                services.directory_sync(source=source)
                profile.disable()
                print(f"{label}: {time.perf_counter() - t0:.2f} s", flush=True)
                pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
