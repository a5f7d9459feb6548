"""Shared helpers for benchmarks: locating the real data, running the uus CLI on a scratch data dir,
measuring wall time and a child's peak memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def data_dir(path: str | None) -> Path:
    """The real-data directory (default ../shared/data); exits with a clear message when missing."""
    p = Path(path or os.environ.get("UUS_BENCH_DATA") or DEFAULT_DATA)
    if not p.is_dir():
        sys.exit(f"benchmark data not found at {p}: pass --data PATH (the shared/data folder with real indexes)")
    return p


def uus_bin() -> str:
    exe = REPO / ".venv" / "bin" / "uus"
    if not exe.exists():
        sys.exit("no .venv/bin/uus: run `make install` first")
    return str(exe)


def run_uus(args: list[str], env: dict, *, check: bool = True) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run `uus ARGS` as a child; returns (seconds, peak RSS of that child in MB, process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([uus_bin(), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if check and proc.returncode != 0:
        sys.exit(f"uus {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    # ru_maxrss of children is the max over all children so far; run each measured command first.
    return seconds, max(peak, before) // 1024, proc


def scratch_env(base: Path, database_url: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UUS_")}
    env["UUS_DATA_DIR"] = str(base)
    env["UUS_LOG_LEVEL"] = "WARNING"
    if database_url:
        env["UUS_DATABASE_URL"] = database_url
    return env


def django_in_process(data_dir: str | Path, database_url: str | None = None, *, migrate: bool = True) -> None:
    """Make this process a UUS server on `data_dir` (its SQLite, or `database_url`), migrated, for
    benchmarks that call the server's code directly."""
    server = str(REPO / "server")
    if server not in sys.path:
        sys.path.insert(0, server)
    os.environ["UUS_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("UUS_LOG_LEVEL", "WARNING")
    if database_url:
        os.environ["UUS_DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
