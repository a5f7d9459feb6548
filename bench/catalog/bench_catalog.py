"""Catalog benchmark: sync the real 63,440-package bookworm main index from loopback, and import a large
notices feed built by repeating the real OSV files under new ids.

    .venv/bin/python bench/catalog/bench_catalog.py [--data ../shared/data] [--notices 5000] [--database-url URL]

Prints seconds and peak memory of the sync (targets: < 20 s, < 500 MB), the time of a second sync with the
index unchanged (skipped), and notices imported per second; each figure is one whole `uus` process, and the
load average is printed before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import data_dir, scratch_env, uus_bin

KEYRING = Path(__file__).resolve().parents[2] / "server/uus/catalog/tests/data/keyrings/debian-archive-keyring.gpg"


def run_uus(args: list[str], env: dict) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run `uus ARGS`; (seconds, peak RSS in MB of that very process, process). os.wait4 gives the
    child's own rusage, where RUSAGE_CHILDREN would give the largest of every child so far."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen([uus_bin(), *args], env=env, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - t0
        child.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        sys.exit(f"uus {' '.join(args)} failed: {stderr.strip()[-500:]}")
    return seconds, usage.ru_maxrss // 1024, subprocess.CompletedProcess(child.args, code, stdout, stderr)


def serve(root: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a, **k: None})
    handler = functools.partial(quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


def bench_sync(data: Path, work: Path, db_url: str | None) -> dict:
    repo = work / "www" / "debian" / "dists" / "bookworm"
    (repo / "main" / "binary-amd64").mkdir(parents=True)
    shutil.copy(data / "debian-packages/bookworm/bookworm_InRelease", repo / "InRelease")
    # The .xz in shared/data is recompressed; the InRelease lists the plain file's hash, so serve that.
    with (
        lzma.open(data / "debian-packages/bookworm/bookworm_main_binary-amd64_Packages.xz") as src,
        open(repo / "main/binary-amd64/Packages", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    url, srv = serve(work / "www")
    env = scratch_env(work / "srv", db_url)
    try:
        run_uus(
            [
                "upstream",
                "add",
                "bookworm",
                url + "/debian",
                "--suites",
                "bookworm",
                "--components",
                "main",
                "--architectures",
                "amd64",
                "--keyring",
                str(KEYRING),
            ],
            env,
        )
        seconds, peak_mb, proc = run_uus(["upstream", "sync", "bookworm", "--json"], env)
        again, _, proc2 = run_uus(["upstream", "sync", "bookworm", "--json"], env)  # index unchanged: skipped
    finally:
        srv.shutdown()
    packages = json.loads(proc.stdout)["bookworm"]["packages"]
    assert json.loads(proc2.stdout)["bookworm"]["indexes_unchanged"] == 1
    return {
        "sync_seconds": round(seconds, 2),
        "sync_peak_mb": peak_mb,
        "packages": packages,
        "resync_unchanged_seconds": round(again, 2),
    }


def bench_notices(data: Path, work: Path, db_url: str | None, count: int) -> dict:
    feed = work / "feed"
    feed.mkdir()
    originals = sorted((data / "usn-osv/osv/usn").glob("USN-*.json"))
    docs = [json.loads(p.read_text()) for p in originals]
    for i in range(count):
        doc = dict(docs[i % len(docs)])
        doc["id"] = f"USN-{90000 + i}-1"
        (feed / f"{doc['id']}.json").write_text(json.dumps(doc))
    env = scratch_env(work / "srv-notices", db_url)
    run_uus(["jobs", "list"], env)  # migrate outside the measurement
    seconds, peak_mb, _ = run_uus(["notices", "import", str(feed), "--json"], env)
    return {
        "notices": count,
        "notices_seconds": round(seconds, 2),
        "notices_per_second": round(count / seconds, 1),
        "notices_peak_mb": peak_mb,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--notices", type=int, default=5000)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    data = data_dir(args.data)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="uus-bench-catalog-") as tmp:
        work = Path(tmp)
        sync = bench_sync(data, work, args.database_url)
        print(
            f"sync bookworm main: {sync['packages']} packages in {sync['sync_seconds']} s, "
            f"peak {sync['sync_peak_mb']} MB (targets < 20 s, < 500 MB); "
            f"again with the index unchanged: {sync['resync_unchanged_seconds']} s",
            flush=True,
        )
        notices = bench_notices(data, work, args.database_url, args.notices)
        print(
            f"notices import: {notices['notices']} notices in {notices['notices_seconds']} s = "
            f"{notices['notices_per_second']} notices/s, peak {notices['notices_peak_mb']} MB",
            flush=True,
        )
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average after: {load}", flush=True)
        print(json.dumps({**sync, **notices, "load_average_after": load}))


if __name__ == "__main__":
    main()
