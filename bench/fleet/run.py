"""Fleet benchmark: N simulated machines drive the agent protocol (/api/agent/v1/) at full speed.

    .venv/bin/python bench/fleet/run.py --machines 1000                 # in-process WSGI, SQLite
    .venv/bin/python bench/fleet/run.py --machines 10000 --database-url postgres://uus@127.0.0.1:5432/uus_bench
    .venv/bin/python bench/fleet/run.py --machines 500 --http           # through `uus serve` over HTTP

Phases, each timed on its own: registrations; one full inventory upload per machine (real Debian
package sets of about 2,000 packages, see fleet.py); unchanged check-ins; then the machines behind on
security updates upgrade: a check-in (the server asks for a delta, or adopts a known inventory) and
a delta upload. Figures: requests per second of server time (in-process) or of wall time (--http),
database bytes per machine beyond the distinct packages, and peak memory.

The in-process mode calls Django's WSGI handler directly (the same code `uus serve` runs, minus the
HTTP parsing), so the figures are the server's, not an HTTP client's. Each phase's rate counts only
the time inside the handler; building the simulated machines' messages is not counted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(REPO / "server"))

from common import django_in_process  # noqa: E402 - after the path setup above

from fleet import fleet as F  # noqa: E402

FIELDS = ("name", "architecture", "version", "source", "source_version", "status")


# -- messages ------------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope() -> str:
    return f'"protocol_version":1,"agent_version":"bench","message_id":"{uuid.uuid4().hex}","sent_at":"{now_iso()}"'


_PKG_JSON: dict[F.Entry, str] = {}


def pkg_json(e: F.Entry) -> str:
    s = _PKG_JSON.get(e)
    if s is None:
        s = _PKG_JSON[e] = json.dumps(dict(zip(FIELDS, e, strict=True)), separators=(",", ":"))
    return s


def inv_hash(entries: list[F.Entry]) -> str:
    return hashlib.sha256("".join("\t".join(e) + "\n" for e in entries).encode()).hexdigest()


def facts(spec: F.MachineSpec, releases) -> dict:
    r = releases[spec.release]
    return {
        "hostname": spec.hostname,
        "fqdn": f"{spec.hostname}.fleet.example.org",
        "machine_id": F.machine_id(spec),
        "os": {
            "id": "debian",
            "version_id": spec.release,
            "version_codename": r.codename,
            "pretty_name": f"Debian GNU/Linux {spec.release} ({r.codename})",
        },
        "kernel": "6.1.0-40-amd64" if spec.release == "12" else "6.12.48+deb13-amd64",
        "architecture": "amd64",
        "reboot_required": False,
        "reboot_required_packages": [],
        "apt_sources": [
            f"deb http://deb.debian.org/debian {r.codename} main",
            f"deb http://security.debian.org/debian-security {r.codename}-security main",
        ],
    }


class Machine:
    def __init__(self, spec: F.MachineSpec, releases):
        self.spec = spec
        self.facts = json.dumps(facts(spec, releases), separators=(",", ":"))
        self.client_id = self.secret = self.token = None
        self.acked_hash = None

    @property
    def auth(self) -> str:
        return f"Machine {self.client_id}:{self.secret}"

    def register_body(self, enroll: str) -> bytes:
        return f'{{{envelope()},"token":"{enroll}","facts":{self.facts}}}'.encode()

    def check_in_body(self, current: str) -> bytes:
        prev = f'"{self.acked_hash}"' if self.acked_hash else "null"
        return (
            f'{{{envelope()},"exchange_token":"{self.token}","facts":{self.facts},"inventory_hash":"{current}",'
            f'"previous_inventory_hash":{prev},"job_results":[]}}'
        ).encode()

    @staticmethod
    def full_body(entries: list[F.Entry], h: str) -> bytes:
        packages = ",".join(map(pkg_json, entries))
        return f'{{{envelope()},"kind":"full","inventory_hash":"{h}","packages":[{packages}]}}'.encode()

    @staticmethod
    def delta_body(base: list[F.Entry], new: list[F.Entry], h: str, base_hash: str) -> bytes:
        old = {(e[0], e[1]): e for e in base}
        cur = {(e[0], e[1]): e for e in new}
        added = ",".join(pkg_json(e) for k, e in sorted(cur.items()) if old.get(k) != e)
        removed = ",".join(json.dumps({"name": k[0], "architecture": k[1]}) for k in sorted(old) if k not in cur)
        return (
            f'{{{envelope()},"kind":"delta","inventory_hash":"{h}","base_hash":"{base_hash}",'
            f'"added":[{added}],"removed":[{removed}]}}'
        ).encode()


# -- transports ----------------------------------------------------------------------------------------


class InProcess:
    """Django's WSGI handler called directly: request parsing, middleware, view, database."""

    name = "in-process WSGI"

    def __init__(self):
        from django.core.handlers.wsgi import WSGIHandler

        self.app = WSGIHandler()
        # CPU time of this process inside the handler: on a shared machine the wall-clock rate also
        # counts the time spent waiting for a core; this one does not (PostgreSQL's own CPU is not in it).
        self.last_cpu = 0.0

    def post(self, path: str, body: bytes, auth: str | None = None) -> tuple[int, dict, float]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "bench",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
        }
        if auth:
            environ["HTTP_AUTHORIZATION"] = auth
        status = []
        t0, c0 = time.perf_counter(), time.process_time()
        result = self.app(environ, lambda s, h, e=None: status.append(s))
        data = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        elapsed = time.perf_counter() - t0
        self.last_cpu = time.process_time() - c0
        return int(status[0][:3]), json.loads(data), elapsed

    def peak_memory_kib(self) -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def close(self):
        pass


class Http:
    """A real `uus serve` subprocess; requests over keep-alive HTTP connections, one per client thread."""

    name = "HTTP to uus serve"

    def __init__(self, env: dict):
        import http.client

        self.http = http.client
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        uus = Path(sys.executable).with_name("uus")
        self.log = open(Path(env["UUS_DATA_DIR"]) / "serve.log", "w")
        self.proc = subprocess.Popen(
            [str(uus), "serve", "--bind", f"127.0.0.1:{self.port}", "--no-worker"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.local = threading.local()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("uus serve did not start; see serve.log")

    def post(self, path: str, body: bytes, auth: str | None = None) -> tuple[int, dict, float]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.http.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data), time.perf_counter() - t0

    def peak_memory_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- phases --------------------------------------------------------------------------------------------


class Phase:
    def __init__(self, name: str, transport=None):
        self.name = name
        self.n = 0
        self.busy = 0.0
        self.wall0 = time.perf_counter()
        self.wall = 0.0
        self.outcomes: Counter = Counter()
        self.transport = transport
        self.cpu = 0.0

    def add(self, status: int, data: dict, elapsed: float, expect: int = 200) -> dict:
        if status != expect:
            raise SystemExit(f"{self.name}: HTTP {status}: {data}")
        self.n += 1
        self.busy += elapsed
        self.cpu += getattr(self.transport, "last_cpu", 0.0)
        return data

    def done(self) -> Phase:
        self.wall = time.perf_counter() - self.wall0
        return self

    def report(self) -> Phase:
        """One line as soon as the phase ends, so that a long run shows its figures as it goes."""
        cpu = f", {self.n / self.cpu:.1f}/s per CPU-second of the server process" if self.cpu else ""
        print(f"  {self.name}: {self.n} in {self.wall:.1f}s wall, {self.busy:.1f}s in the handler{cpu}", flush=True)
        return self

    def cpu_rate(self) -> float | None:
        return round(self.n / self.cpu, 1) if self.cpu else None

    def rate(self, concurrent: bool) -> float:
        t = self.wall if concurrent else self.busy
        return self.n / t if t else 0.0


def run_all(items, fn, concurrency: int):
    """fn(item) for every item, on `concurrency` threads (1: in this thread)."""
    if concurrency <= 1:
        for it in items:
            fn(it)
        return
    lock = threading.Lock()
    it = iter(items)
    errors = []

    def worker():
        while True:
            with lock:
                try:
                    x = next(it)
                except StopIteration:
                    return
            try:
                fn(x)
            except BaseException as exc:  # a failed request stops the run
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def profiled(on: bool, fn, *args) -> None:
    """fn(*args), under cProfile when `on` (in-process only: the server runs in this process)."""
    if not on:
        fn(*args)
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.runcall(fn, *args)
    stats = pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("cumulative")
    stats.print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def database_sizes() -> dict[str, int]:
    """Bytes per table (with its indexes) of the inventory and agent tables, compacted."""
    from django.db import connection

    tables = [t for t in connection.introspection.table_names() if t.startswith(("inventory_", "agentapi_"))]
    sizes: dict[str, int] = {}
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            for t in tables:
                cur.execute(f'VACUUM FULL ANALYZE "{t}"')
                cur.execute("SELECT pg_total_relation_size(%s)", [t])
                sizes[t] = cur.fetchone()[0]
        else:
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.execute("VACUUM")
            try:
                cur.execute(
                    "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name "
                    "GROUP BY m.tbl_name"
                )
                sizes = {name: n for name, n in cur.fetchall() if name in tables}
            except Exception:  # SQLite without the dbstat table: the whole file
                sizes = {"(whole database file)": os.path.getsize(connection.settings_dict["NAME"])}
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--machines", type=int, default=200, help="fleet size (default 200)")
    p.add_argument(
        "--data",
        default=str(REPO.parent / "shared" / "data"),
        help="the shared data folder with debian-packages/ (default ../shared/data)",
    )
    p.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite in --data-dir)")
    p.add_argument("--data-dir", default="", help="UUS data directory (default: a fresh temporary one)")
    p.add_argument("--reset", action="store_true", help="delete every machine and inventory in the database first")
    p.add_argument("--http", action="store_true", help="drive a `uus serve` subprocess over HTTP")
    p.add_argument("--concurrency", type=int, default=0, help="client threads (default 1 in-process, 4 with --http)")
    p.add_argument("--check-in-rounds", type=int, default=2, help="unchanged check-ins per machine (default 2)")
    p.add_argument("--base-size", type=int, default=F.BASE_SIZE, help="packages in each release's base set")
    p.add_argument(
        "--persistent-connections",
        action="store_true",
        help="in-process: keep the database connection between requests (CONN_MAX_AGE=None)",
    )
    p.add_argument(
        "--profile",
        choices=("registrations", "full", "check-ins", "deltas"),
        help="run this phase under cProfile and print where the time goes (slows the phase down)",
    )
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = p.parse_args(argv)
    concurrency = args.concurrency or (4 if args.http else 1)

    t0 = time.perf_counter()
    releases = F.load_releases(Path(args.data), base_size=args.base_size)
    specs = F.machine_specs(args.machines, releases)
    print(
        f"fleet: {args.machines} machines, {len({s.klass for s in specs})} distinct inventories, "
        f"data loaded in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )

    tmp = None
    data_dir = args.data_dir or (tmp := tempfile.mkdtemp(prefix="uus-bench-"))
    django_in_process(data_dir, args.database_url)
    from django.db import connection

    if args.persistent_connections:
        connection.settings_dict["CONN_MAX_AGE"] = None

    from uus.inventory import services
    from uus.inventory.models import Machine as MachineRow
    from uus.inventory.models import Package, PackageSet

    if args.reset:
        from uus.agentapi.models import AgentMessage
        from uus.inventory.models import (
            InventoryChange,
            PackageChunk,
            PackageChunkMember,
            PackageSetChunk,
        )

        for model in (
            AgentMessage,
            InventoryChange,
            MachineRow,
            PackageSetChunk,
            PackageSet,
            PackageChunkMember,
            PackageChunk,
            Package,
        ):
            model.objects.all()._raw_delete(connection.alias)
    if MachineRow.objects.exists():
        raise SystemExit("the database already has machines: use an empty database or --reset")
    _, enroll = services.enrollment_token_create(comment="bench")
    connection.close()

    env = {**os.environ}
    transport = Http(env) if args.http else InProcess()
    machines = [Machine(s, releases) for s in specs]
    phases: list[Phase] = []
    try:
        # 1. registrations
        ph = Phase("registrations", transport)

        def register(m: Machine):
            d = ph.add(*transport.post("/api/agent/v1/register/", m.register_body(enroll)), expect=201)
            m.client_id, m.secret, m.token = d["client_id"], d["secret"], d["exchange_token"]

        profiled(args.profile == "registrations", run_all, machines, register, concurrency)
        phases.append(ph.done().report())

        # 2. a full inventory from every machine (as after a server reset: nothing is known yet)
        ph = Phase("full inventory uploads", transport)
        sizes = []

        def upload_full(m: Machine):
            entries = F.inventory(m.spec, releases)
            h = inv_hash(entries)
            body = m.full_body(entries, h)
            sizes.append(len(entries))
            ph.add(*transport.post("/api/agent/v1/inventory/", body, m.auth))
            m.acked_hash = h

        profiled(args.profile == "full", run_all, machines, upload_full, concurrency)
        phases.append(ph.done().report())
        full_sizes = (min(sizes), sum(sizes) // len(sizes), max(sizes))

        # 3. unchanged check-ins
        ph = Phase("unchanged check-ins", transport)

        def check_in(m: Machine):
            d = ph.add(*transport.post("/api/agent/v1/check-in/", m.check_in_body(m.acked_hash), m.auth))
            m.token = d["next_exchange_token"]
            ph.outcomes[d["inventory"]] += 1

        rounds = [m for _ in range(args.check_in_rounds) for m in machines]
        profiled(args.profile == "check-ins", run_all, rounds, check_in, concurrency)
        phases.append(ph.done().report())

        # 4. machines behind on security updates upgrade to the latest patch level
        behind = [m for m in machines if m.spec.level < F.LEVELS - 1]
        ci = Phase("check-ins after an upgrade", transport)
        ph = Phase("delta uploads", transport)

        def upgrade(m: Machine):
            base = F.inventory(m.spec, releases)
            new = F.inventory(m.spec, releases, level=F.LEVELS - 1)
            h = inv_hash(new)
            d = ci.add(*transport.post("/api/agent/v1/check-in/", m.check_in_body(h), m.auth))
            m.token = d["next_exchange_token"]
            ci.outcomes[d["inventory"]] += 1
            if d["inventory"] == "delta":
                ph.add(*transport.post("/api/agent/v1/inventory/", m.delta_body(base, new, h, m.acked_hash), m.auth))
            elif d["inventory"] == "full":
                raise SystemExit("the server asked for a full inventory where it knew the base")
            m.acked_hash = h

        profiled(args.profile == "deltas", run_all, behind, upgrade, concurrency)
        phases.append(ci.done().report())
        phases.append(ph.done().report())
        peak_kib = transport.peak_memory_kib()
    finally:
        transport.close()

    from uus.inventory.models import InventoryChange, PackageChunk

    t = time.perf_counter()
    collected = services.package_sets_collect(grace=__import__("datetime").timedelta(0))
    gc_seconds = time.perf_counter() - t
    counts = {
        "machines": MachineRow.objects.count(),
        "distinct packages": Package.objects.count(),
        "package sets": PackageSet.objects.count(),
        "chunks": PackageChunk.objects.count(),
        "history rows": InventoryChange.objects.count(),
    }
    sizes_by_table = database_sizes()
    total = sum(sizes_by_table.values())
    packages_bytes = sizes_by_table.get("inventory_package", 0)
    per_machine = (total - packages_bytes) / max(1, args.machines)
    # History grows with every change a machine makes, and message ids are forgotten after an hour
    # (agentapi.tasks): both are shown apart from the inventory's own cost per machine.
    history_bytes = sizes_by_table.get("inventory_inventorychange", 0)
    messages_bytes = sizes_by_table.get("agentapi_agentmessage", 0)
    inventory_per_machine = (total - packages_bytes - history_bytes - messages_bytes) / max(1, args.machines)

    concurrent = args.http or concurrency > 1
    figures = {
        "machines": args.machines,
        "database": connection.vendor,
        "transport": transport.name + (f", {concurrency} client threads" if concurrent else ""),
        "packages per machine (min/avg/max)": full_sizes,
        **{f"{ph.name}/s": round(ph.rate(concurrent), 1) for ph in phases},
        **{f"{ph.name}/s per CPU-second of the server process": ph.cpu_rate() for ph in phases if ph.cpu},
        "check-in answers": dict(phases[2].outcomes),
        "answers after an upgrade": dict(phases[3].outcomes),
        **counts,
        "database bytes, inventory tables": total,
        "database bytes, distinct packages table": packages_bytes,
        "database bytes per machine beyond distinct packages": round(per_machine),
        "  of which machine and inventory (no history, no message ids)": round(inventory_per_machine),
        "  history bytes per change row": round(history_bytes / max(1, counts["history rows"])),
        "  message-id bytes per machine (pruned after an hour)": round(messages_bytes / max(1, args.machines)),
        "bytes by table": sizes_by_table,
        "garbage collection": {**collected, "seconds": round(gc_seconds, 2)},
        "peak memory MiB (" + ("uus serve" if args.http else "server and simulator, one process") + ")": round(
            peak_kib / 1024
        ),
    }
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        print(json.dumps(figures))
    if tmp and not args.data_dir:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
