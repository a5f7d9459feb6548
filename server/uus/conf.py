"""UUS configuration: defaults < config file ($UUS_CONFIG, TOML) < UUS_* environment variables.

Every key is declared here with its type and default; an unknown or malformed key stops start-up
with ImproperlyConfigured naming it, because a typo silently ignored is a misconfigured fleet server.
`docs/reference/settings.md` and `uus.example.toml` list the same keys.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

# Variables that carry the UUS_ prefix but are not settings (tooling around the server).
_NON_SETTING_ENV = {"UUS_CONFIG"}
_NON_SETTING_ENV_PREFIXES = ("UUS_TEST_", "UUS_ACCEPTANCE_", "UUS_BENCH_")


@dataclass(frozen=True)
class Key:
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()


KEYS: dict[str, Key] = {
    "data_dir": Key(str, "./var", "Directory for the SQLite database, keys, repositories and cache."),
    "database_url": Key(str, "", "Database URL; empty means SQLite in data_dir. postgres://user:pw@host:port/db"),
    "secret_key": Key(str, "", "Django secret key; empty means one generated into data_dir (mode 0600)."),
    "debug": Key(bool, False, "Django debug mode; never in production."),
    "allowed_hosts": Key(list, ["*"], "Host names this server answers to."),
    "csrf_trusted_origins": Key(list, [], "Origins trusted for CSRF when behind a TLS proxy."),
    "base_url": Key(str, "", "Public URL of this server, used in agent apt lines; empty = from the request."),
    "task_backend": Key(
        str,
        "inprocess",
        "inprocess: `uus serve` runs jobs in a thread; db: separate `uus worker` processes do.",
        ("inprocess", "db"),
    ),
    "log_level": Key(str, "INFO", "Logging level.", ("DEBUG", "INFO", "WARNING", "ERROR")),
    "login_max_failures": Key(int, 5, "Failed logins per user name (or 4x per address) before a lockout."),
    "login_lockout_minutes": Key(int, 15, "Window and lockout length for failed logins."),
    "upload_max_mb": Key(int, 512, "Largest .deb accepted by an upload."),
    "repo_valid_days": Key(int, 7, "Days a published repository stays valid (Valid-Until); re-signed daily."),
    "inventory_history_days": Key(
        int, 730, "Days each machine's package history is kept (the audit asks for 18 months and more)."
    ),
    "cache_max_mb": Key(int, 0, "Pull-through cache size limit (LRU eviction of unreferenced files); 0 = none."),
    "session_cookie_secure": Key(bool, False, "Send session cookies over HTTPS only."),
    "worker_poll_seconds": Key(float, 1.0, "How often an idle worker looks for queued jobs."),
    "notices_feed_url": Key(str, "", "OSV notices archive or directory imported every 6 hours; empty = off."),
    "upstream_sync_minutes": Key(int, 360, "How often every enabled upstream archive is synced."),
    "notify_emails": Key(list, [], "Addresses told of new security updates, halted deployments and failed jobs."),
    "notify_webhook": Key(str, "", "URL that receives the same notifications as JSON POSTs; empty = off."),
    "notify_min_priority": Key(
        str, "high", "Lowest notice priority announced.", ("negligible", "low", "medium", "high", "critical")
    ),
    "smtp_host": Key(str, "localhost", "SMTP server for notification e-mail."),
    "smtp_port": Key(int, 25, "SMTP port."),
    "smtp_user": Key(str, "", "SMTP user name; empty = no authentication."),
    "smtp_password": Key(str, "", "SMTP password (prefer the UUS_SMTP_PASSWORD environment variable)."),
    "smtp_starttls": Key(bool, False, "Use STARTTLS on the SMTP connection."),
    "email_from": Key(str, "uus@localhost", "Sender address of notification e-mail."),
}


def _coerce(name: str, key: Key, raw: Any, source: str) -> Any:
    try:
        if key.type is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).strip().lower() in ("0", "false", "no", "off", ""):
                value = False
            else:
                raise ValueError(raw)
        elif key.type is list:
            value = list(raw) if isinstance(raw, list) else [p.strip() for p in str(raw).split(",") if p.strip()]
        elif key.type is int:
            value = int(raw)
        elif key.type is float:
            value = float(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError(raw)
            value = raw
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"configuration key '{name}' ({source}) must be a {key.type.__name__}, got {raw!r}"
        ) from exc
    if key.choices and value not in key.choices:
        raise ImproperlyConfigured(
            f"configuration key '{name}' ({source}) must be one of {', '.join(key.choices)}, got {value!r}"
        )
    return value


def load(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the effective configuration, validated."""
    env = os.environ if environ is None else environ
    values = {name: key.default for name, key in KEYS.items()}
    path = env.get("UUS_CONFIG", "")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ImproperlyConfigured(f"UUS_CONFIG names {path}, which does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ImproperlyConfigured(f"config file {path} is not valid TOML: {exc}") from exc
        for name, raw in data.items():
            if name not in KEYS:
                raise ImproperlyConfigured(f"unknown configuration key '{name}' in {path}")
            values[name] = _coerce(name, KEYS[name], raw, path)
    for var, raw in env.items():
        if not var.startswith("UUS_") or var in _NON_SETTING_ENV or var.startswith(_NON_SETTING_ENV_PREFIXES):
            continue
        name = var[4:].lower()
        if name not in KEYS:
            raise ImproperlyConfigured(f"unknown configuration variable {var}")
        values[name] = _coerce(name, KEYS[name], raw, var)
    values["data_dir"] = str(Path(values["data_dir"]).expanduser().resolve())
    _check_database_url(values["database_url"])
    return values


def _check_database_url(url: str) -> None:
    if not url:
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql", "sqlite"):
        raise ImproperlyConfigured(
            f"configuration key 'database_url' has scheme '{parsed.scheme}': use postgres://... or sqlite:///path"
        )
    if parsed.scheme != "sqlite" and not parsed.path.strip("/"):
        raise ImproperlyConfigured("configuration key 'database_url' names no database (postgres://host/DBNAME)")


def secret_key(data_dir: str) -> str:
    """The Django secret key kept in the data directory, created once with mode 0600."""
    path = Path(data_dir) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
