"""Repository benchmark.

    .venv/bin/python bench/repos/bench_repos.py [--data ../shared/data] [--debs 5000] [--skip a,b,c]

(a) add and publish N small .debs, built with `dpkg-deb --build` under real names and versions from the
    bookworm main index, with UUS (`uus packages upload --move --publish --ring production DIR`, one
    command as reprepro's; and copying, `uus packages upload DIR` + `uus repos publish production`),
    aptly (`repo add` + `publish repo`) and reprepro (`includedeb`, which exports), all signing with
    gpg; the disk is synced before each tool, so none pays for another's writes; --rounds-a rounds
    (default 3), the tools in a rotating order, median and minimum printed;
(b) publish a ring that exposes the whole bookworm main catalog (63,440 packages; pool by pull-through),
    first publish and a republish with nothing changed (the daily Valid-Until renewal);
(c) download throughput of one cached 64 MiB file from `uus serve` against nginx serving the same file, and
    through nginx in front of `uus serve` as docs/deploy-nginx.md sets it up (X-Accel-Redirect).

aptly, reprepro and nginx are Debian packages: when missing, the setup step installs them with apt-get,
and says so if that fails. Targets (issue 6): (a) faster than both, (b) < 10 s, (c) >= half of nginx.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import http.server
import lzma
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, data_dir, run_uus, scratch_env, uus_bin

KEYRING = REPO / "server/uus/catalog/tests/data/keyrings/debian-archive-keyring.gpg"


def setup_tools() -> dict[str, bool]:
    """Install aptly, reprepro and nginx when missing (the benchmark's own setup step)."""
    wanted = {"aptly": "aptly", "reprepro": "reprepro", "nginx": "nginx"}
    missing = [pkg for tool, pkg in wanted.items() if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        print(f"setup: installing {' '.join(missing)} with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, capture_output=True, check=False)
    have = {tool: bool(shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()) for tool in wanted}
    for tool, ok in have.items():
        if not ok:
            print(f"setup: {tool} is unavailable; its comparison is skipped", flush=True)
    return have


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def index_entries(data: Path, n: int) -> list[tuple[str, str, str]]:
    """n (name, version, architecture) spread evenly over the real bookworm main index."""
    rows = []
    with lzma.open(data / "debian-packages/bookworm/bookworm_main_binary-amd64_Packages.xz", "rt") as f:
        name = version = arch = None
        for line in f:
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            elif line.startswith("Architecture: "):
                arch = line[14:].strip()
            elif line == "\n" and name:
                rows.append((name, version, arch))
                name = None
    step = max(1, len(rows) // n)
    return rows[::step][:n]


def _build_one(args: tuple[Path, str, str, str]) -> Path:
    out, name, version, arch = args
    src = Path(tempfile.mkdtemp(dir=out.parent))
    try:
        (src / "DEBIAN").mkdir()
        (src / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nSection: misc\nPriority: optional\n"
            f"Maintainer: UUS bench <bench@example.invalid>\nDescription: benchmark package {name}\n"
        )
        doc = src / "usr/share/doc" / name
        doc.mkdir(parents=True)
        (doc / "README").write_text(f"{name} {version}\n")
        deb = out / f"{name}_{version.split(':')[-1]}_{arch}.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(src), str(deb)], check=True, capture_output=True
        )
        return deb
    finally:
        shutil.rmtree(src, ignore_errors=True)


def build_debs(entries, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("*.deb"))
    if len(existing) == len(entries):
        return existing
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        return sorted(ex.map(_build_one, [(out, *e) for e in entries]))


def gpg_key(home: Path) -> str:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    base = ["gpg", "--homedir", str(home), "--batch", "--yes", "--passphrase", "", "--pinentry-mode", "loopback"]
    subprocess.run([*base, "--quick-gen-key", "Bench <bench@example.invalid>", "ed25519", "sign", "never"],
                   check=True, capture_output=True)  # fmt: skip
    out = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "--list-secret-keys"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def timed(cmd: list[str], **kw) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed: {(proc.stderr or proc.stdout)[-400:]}")
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- (a)


def bench_publish_debs(data: Path, work: Path, n: int, have: dict, rounds: int) -> None:
    entries = index_entries(data, n)
    t0 = time.perf_counter()
    debs = build_debs(entries, work / "debs")
    print(f"(a) built {len(debs)} .debs with dpkg-deb in {time.perf_counter() - t0:.1f} s (not timed below)")
    gnupg = work / "g"
    fpr = gpg_key(gnupg)
    genv = {**os.environ, "GNUPGHOME": str(gnupg)}
    tools = {"UUS": uus_one_command, "UUS, copy": uus_two_commands}
    if have["reprepro"]:
        tools["reprepro"] = reprepro_includedeb
    if have["aptly"]:
        tools["aptly"] = aptly_add_publish
    how: dict[str, str] = {}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    print(f"(a) {rounds} rounds, the tools in a new order each round; {load()} at the start")
    try:
        for r in range(rounds):
            order = list(tools)[r % len(tools) :] + list(tools)[: r % len(tools)]
            for name in order:
                run = Path(tempfile.mkdtemp(prefix="run-", dir=work))
                try:
                    first, second, how[name] = tools[name](debs, work / "debs", run, genv, fpr)
                finally:
                    shutil.rmtree(run, ignore_errors=True)  # after the timing, and synced before the next
                times[name].append((first, second))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"], capture_output=True)
    print(f"(a) add + publish {len(debs)} small .debs (signed), wall seconds, median of {rounds} (min), {load()}:")
    totals = {name: sorted(a + b for a, b in runs) for name, runs in times.items()}
    for name, runs in times.items():
        median = totals[name][len(runs) // 2]
        parts = sorted(runs, key=lambda ab: ab[0] + ab[1])[len(runs) // 2]
        detail = f"{parts[0]:.2f} + {parts[1]:.2f}: " if parts[1] else ""
        print(f"    {name:10} {median:7.2f} s ({totals[name][0]:.2f})   {detail}{how[name]}")
    others = {k: v[len(v) // 2] for k, v in totals.items() if not k.startswith("UUS")}
    if others:
        for name in ("UUS", "UUS, copy"):
            verdict = all(totals[name][len(totals[name]) // 2] < v for v in others.values())
            print(f"    {name}: median faster than {' and '.join(others)}: {'met' if verdict else 'NOT met'}")


def settle() -> None:
    """Flush what the previous step wrote (or removed) before the next is timed: no tool pays for
    another's disk work."""
    os.sync()
    time.sleep(2)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def uus_one_command(debs, debs_dir, run, genv, fpr) -> tuple[float, float, str]:
    """As reprepro's includedeb: one command that adds and publishes. --move hands the files over
    (hard links, as aptly makes by default), so UUS gets copies of its own first (not timed)."""
    incoming = run / "incoming"
    incoming.mkdir()
    for deb in debs:
        shutil.copyfile(deb, incoming / deb.name)
    env = scratch_env(run / "uus")
    run_uus(["repos", "key", "show"], env)  # migrate and make the signing key first (not timed, as for the others)
    settle()
    one, _, _ = run_uus(["packages", "upload", "--move", "--publish", "--ring", "production", str(incoming)], env)
    return one, 0.0, "uus packages upload --move --publish --ring production DIR"


def uus_two_commands(debs, debs_dir, run, genv, fpr) -> tuple[float, float, str]:
    env = scratch_env(run / "uus")
    run_uus(["repos", "key", "show"], env)
    settle()
    add, _, _ = run_uus(["packages", "upload", str(debs_dir)], env)
    pub, _, _ = run_uus(["repos", "publish", "production"], env)
    return add, pub, "uus packages upload DIR + uus repos publish production (files copied)"


def reprepro_includedeb(debs, debs_dir, run, genv, fpr) -> tuple[float, float, str]:
    base = run / "reprepro"
    (base / "conf").mkdir(parents=True)
    (base / "conf/distributions").write_text(
        f"Codename: bench\nSuite: bench\nArchitectures: amd64\nComponents: main\nSignWith: {fpr}\n"
    )
    settle()
    t = timed(["reprepro", "-b", str(base), "--silent", "includedeb", "bench", *map(str, debs)], env=genv)
    return t, 0.0, "reprepro includedeb (adds and exports; files copied)"


def aptly_add_publish(debs, debs_dir, run, genv, fpr) -> tuple[float, float, str]:
    root = run / "aptly"
    cfg = run / "aptly.conf"
    cfg.write_text(f'{{"rootDir": "{root}", "gpgProvider": "gpg", "architectures": ["amd64", "all"]}}')
    a = ["aptly", f"-config={cfg}"]
    timed([*a, "repo", "create", "-distribution=bench", "-component=main", "bench"], env=genv)
    settle()
    add = timed([*a, "repo", "add", "bench", *map(str, debs)], env=genv)
    pub = timed([*a, "publish", "repo", f"-gpg-key={fpr}", "-batch", "bench"], env=genv)
    return add, pub, "aptly repo add + publish repo (files hard-linked)"


# --------------------------------------------------------------------------- (b)


def serve_dir(root: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a, **k: None})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


APPROVE_ALL = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "uus.settings"
django.setup()
from uus.approvals.models import Approval, Ring
from uus.catalog.models import ArchivePackage
ring = Ring.objects.get(name="production")
rows = ArchivePackage.objects.values_list("name", "version", "version_key").distinct()
Approval.objects.bulk_create(
    [Approval(ring=ring, name=n, version=v, version_key=k, state="approved") for n, v, k in rows],
    batch_size=2000, ignore_conflicts=True)
print(Approval.objects.filter(ring=ring).count())
"""


def bench_whole_catalog(data: Path, work: Path) -> None:
    repo = work / "www/debian/dists/bookworm"
    (repo / "main/binary-amd64").mkdir(parents=True)
    shutil.copy(data / "debian-packages/bookworm/bookworm_InRelease", repo / "InRelease")
    with (
        lzma.open(data / "debian-packages/bookworm/bookworm_main_binary-amd64_Packages.xz") as src,
        open(repo / "main/binary-amd64/Packages", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    url, srv = serve_dir(work / "www")
    env = scratch_env(work / "srv")
    try:
        run_uus(["upstream", "add", "bookworm", url + "/debian", "--suites", "bookworm", "--components", "main",
                 "--architectures", "amd64", "--keyring", str(KEYRING)], env)  # fmt: skip
        run_uus(["upstream", "sync", "bookworm"], env)
        approved = subprocess.run(
            [str(Path(uus_bin()).with_name("python")), "-c", APPROVE_ALL], env=env, capture_output=True, text=True
        )
        if approved.returncode != 0:
            sys.exit(f"approving the catalog failed: {approved.stderr[-400:]}")
        first, peak, proc = run_uus(["repos", "publish", "production", "--json"], env)
        again, _, _ = run_uus(["repos", "publish", "production", "--json"], env)
        shutil.rmtree(work / "srv/upstream-indexes")  # the index fetch is part of a cold first publish
        cold, _, _ = run_uus(["repos", "publish", "production", "--json"], env)
    finally:
        srv.shutdown()
    import json

    published = json.loads(proc.stdout)[0]
    suites = {s["suite"]: s["packages"] for s in published["suites"]}
    print(f"(b) ring exposing the whole bookworm main catalog ({approved.stdout.strip()} approvals; suites {suites}),")
    print(f"    `uus repos publish production` wall time including process start, {load()} at the end:")
    print(f"    first publish {first:.2f} s (peak {peak} MB); republish, nothing changed {again:.2f} s;")
    print(f"    with the upstream index fetched again from loopback {cold:.2f} s.   target: < 10 s")


# --------------------------------------------------------------------------- (c)


def bench_throughput(work: Path, have: dict, rounds: int, parallel: int) -> None:
    src = work / "big/DEBIAN"
    src.mkdir(parents=True)
    (src / "control").write_text(
        "Package: uus-bench-big\nVersion: 1.0\nArchitecture: all\nMaintainer: B <b@example.invalid>\n"
        "Description: 64 MiB of random data\n"
    )
    (work / "big/opt").mkdir()
    (work / "big/opt/blob").write_bytes(os.urandom(64 * 1024 * 1024))
    deb = work / "uus-bench-big_1.0_all.deb"
    subprocess.run(["dpkg-deb", "-Znone", "--build", str(work / "big"), str(deb)], check=True, capture_output=True)
    env = scratch_env(work / "srv")
    run_uus(["packages", "upload", str(deb)], env)
    run_uus(["repos", "publish", "production"], env)
    port = free_port()
    server = subprocess.Popen(
        [uus_bin(), "serve", "--bind", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    nginx_proc = None
    try:
        path = "/repo/production/pool/local/main/u/uus-bench-big/uus-bench-big_1.0_all.deb"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        targets = {"uus serve": f"http://127.0.0.1:{port}{path}"}
        if have["nginx"]:
            www = work / "nginx-www" / path.lstrip("/")
            www.parent.mkdir(parents=True)
            shutil.copy(deb, www)
            nport, aport = free_port(), free_port()
            conf = work / "nginx.conf"
            conf.write_text(
                ("user root;\n" if os.geteuid() == 0 else "")  # its workers must read the 0700 work directory
                + f"worker_processes 2; daemon off; pid {work}/nginx.pid; error_log {work}/nginx.err;\n"
                f"events {{ worker_connections 256; }}\nhttp {{ access_log off; sendfile on;\n"
                f"  client_body_temp_path {work}/ncb; proxy_temp_path {work}/np; fastcgi_temp_path {work}/nf;\n"
                f"  uwsgi_temp_path {work}/nu; scgi_temp_path {work}/ns;\n"
                f"  server {{ listen 127.0.0.1:{nport}; root {work}/nginx-www; }}\n"
                # the deployment of docs/deploy-nginx.md: UUS resolves the pool path, nginx sends the file
                f"  server {{ listen 127.0.0.1:{aport};\n"
                f"    location /_uus_pool/ {{ internal; alias {work}/srv/pool/; }}\n"
                f"    location /repo/ {{ proxy_pass http://127.0.0.1:{port};\n"
                "      proxy_set_header X-UUS-Accel-Pool /_uus_pool/; }\n"
                f"  }} }}\n"
            )
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            nginx_proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
            time.sleep(1)
            targets["nginx"] = f"http://127.0.0.1:{nport}{path}"
            targets["nginx > uus"] = f"http://127.0.0.1:{aport}{path}"
        size = deb.stat().st_size
        rates = {}
        for name, url in targets.items():
            subprocess.run(["curl", "-fsS", "-o", "/dev/null", url], check=True)  # warm (and cache) once
            t0 = time.perf_counter()
            for _ in range(rounds):
                procs = [subprocess.Popen(["curl", "-fsS", "-o", "/dev/null", url]) for _ in range(parallel)]
                if any(p.wait() != 0 for p in procs):
                    raise RuntimeError(f"a download from {name} failed")
            seconds = time.perf_counter() - t0
            rates[name] = size * rounds * parallel / seconds / 1e6
        print(f"(c) {rounds} x {parallel} parallel downloads of a cached {size / 1048576:.0f} MiB file with curl, "
              f"{load()} at the end:")  # fmt: skip
        names = {"nginx > uus": "nginx in front of uus serve (docs/deploy-nginx.md, X-Accel-Redirect)"}
        for name, rate in rates.items():
            print(f"    {name:11} {rate:8.1f} MB/s   {names.get(name, '')}".rstrip())
        if "nginx" in rates:
            ratio = rates["uus serve"] / rates["nginx"]
            print(f"    uus/nginx = {ratio:.2f}   target: >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        if nginx_proc:
            nginx_proc.terminate()
            nginx_proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="real data directory (default ../shared/data)")
    ap.add_argument("--debs", type=int, default=5000, help="small .debs for (a) (default 5000)")
    ap.add_argument("--rounds", type=int, default=5, help="download rounds for (c)")
    ap.add_argument("--rounds-a", type=int, default=3, help="rounds of (a), each tool once per round (median)")
    ap.add_argument("--parallel", type=int, default=4, help="parallel downloads per round for (c)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c")
    ap.add_argument("--work", default="", help="work directory (kept; the built .debs are reused)")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    skip = set(args.skip.split(","))
    have = setup_tools()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="uus-bench-repos-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for part, fn in (
            ("a", lambda w: bench_publish_debs(data, w, args.debs, have, args.rounds_a)),
            ("b", lambda w: bench_whole_catalog(data, w)),
            ("c", lambda w: bench_throughput(w, have, args.rounds, args.parallel)),
        ):
            if part in skip:
                continue
            sub = work / part
            for leftover in ("uus", "aptly", "reprepro", "g", "srv", "www", "big", "nginx-www"):
                shutil.rmtree(sub / leftover, ignore_errors=True)
            sub.mkdir(exist_ok=True)
            fn(sub)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
