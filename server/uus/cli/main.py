"""`uus <noun> <verb>`: the server's command line. Every verb has --help; errors go to stderr with a
non-zero exit; --json prints what the API returns."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that add verbs: each has register(subparsers). Apps append theirs here.
COMMAND_MODULES = [
    "uus.cli.serve",
    "uus.cli.accounts",
    "uus.cli.jobs",
    "uus.cli.tokens",
    "uus.cli.machines",
    "uus.cli.catalog",
    "uus.cli.repos",
    "uus.cli.agent",
    "uus.cli.exposure",
    "uus.cli.directory",
    "uus.cli.approvals",
    "uus.cli.deployments",
]


class CliError(Exception):
    """A user-facing failure of a command; printed without a traceback."""


def setup_django(migrate: bool = True) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
    import django

    django.setup()
    if migrate:
        ensure_migrated()


def ensure_migrated() -> None:
    """Every command prepares a new or older data directory by itself."""
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uus", description="UUS, the Ubuntu Update Server.")
    sub = parser.add_subparsers(dest="noun", metavar="COMMAND")
    sub.required = True
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from django.core.exceptions import ImproperlyConfigured

    try:
        setup_django(migrate=getattr(args, "migrate", True))
        return args.func(args) or 0
    except ImproperlyConfigured as exc:
        print(f"uus: configuration error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"uus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from django.db import Error as DatabaseError

        from uus.core.exceptions import UusError

        if isinstance(exc, UusError):
            print(f"uus: {exc.message}", file=sys.stderr)
            return 1
        if isinstance(exc, DatabaseError):
            print(f"uus: database error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
