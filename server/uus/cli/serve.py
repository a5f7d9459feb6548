"""`uus serve` and `uus worker`."""

from __future__ import annotations

import logging
import signal
import sys

log = logging.getLogger("uus.serve")


def _bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"uus: --bind must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def serve(args) -> int:
    from django.conf import settings
    from django.db import connection
    from waitress import serve as waitress_serve

    from uus.cli.main import CliError
    from uus.wsgi import application

    host, port = _bind(args.bind)
    try:
        connection.ensure_connection()
    except Exception as exc:
        raise CliError(f"database unreachable: {exc}") from exc
    if settings.UUS["task_backend"] == "inprocess" and not args.no_worker:
        from uus.jobs.worker import start_inprocess_worker

        start_inprocess_worker()
        log.info("in-process worker started")
    log.info("UUS serving on http://%s:%s (data dir %s)", host, port, settings.DATA_DIR)
    print(f"UUS serving on http://{host}:{port}  (data: {settings.DATA_DIR})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    waitress_serve(
        application,
        host=host,
        port=port,
        threads=args.threads,
        ident="uus",
        max_request_body_size=(settings.UUS["upload_max_mb"] + 16) * 1024 * 1024,
        channel_timeout=300,
        connection_limit=1000,
    )
    return 0


def worker(args) -> int:
    from uus.jobs.worker import Worker

    w = Worker(name=args.name or None)
    signal.signal(signal.SIGTERM, lambda *_: w.stop.set())
    print(f"UUS worker {w.name} started", flush=True)
    if args.once:
        while w.run_once():
            pass
        return 0
    try:
        w.run_forever()
    except KeyboardInterrupt:
        w.stop.set()
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the web server (and, in the embedded default, the worker)")
    p.add_argument("--bind", default="127.0.0.1:8000", help="HOST:PORT to listen on (default 127.0.0.1:8000)")
    p.add_argument("--threads", type=int, default=16, help="request threads")
    p.add_argument("--no-worker", action="store_true", help="do not run the in-process worker")
    p.set_defaults(func=serve)
    p = sub.add_parser("worker", help="run background jobs (production: task_backend = db)")
    p.add_argument("--name", default="", help="worker name shown on jobs (default host:pid)")
    p.add_argument("--once", action="store_true", help="run queued jobs, then exit")
    p.set_defaults(func=worker)
