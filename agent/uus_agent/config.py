"""Agent settings: command line > /etc/uus-agent/agent.conf ([agent] section) > defaults.

Every key is listed in packaging/agent.conf (installed as /etc/uus-agent/agent.conf); a key the
agent does not know stops it with a message naming the key, so a typo never silently falls back to
a default.
"""

from __future__ import annotations

import configparser
import os
from typing import Any, Callable, Dict, Optional

DEFAULT_CONFIG_FILE = "/etc/uus-agent/agent.conf"


class ConfigError(Exception):
    pass


def _positive_float(value: str) -> float:
    f = float(value)
    if f < 0:
        raise ValueError("must not be negative")
    return f


def _fraction(value: str) -> float:
    f = float(value)
    if not 0 <= f < 1:
        raise ValueError("must be between 0 and 1")
    return f


def _path(value: str) -> str:
    return os.path.abspath(os.path.expanduser(value))


def _opt_path(value: str) -> Optional[str]:
    return _path(value) if value.strip() else None


def _str(value: str) -> str:
    return value.strip()


# key -> (parser, default, help). The defaults are what a packaged agent on a real machine uses.
OPTIONS: Dict[str, Any] = {
    "state_dir": (
        _path,
        "/var/lib/uus-agent",
        "where credentials, inventory and the job outbox live",
    ),
    "root": (_path, "/", "the machine's file system (dpkg database, os-release, apt sources)"),
    "server": (_str, "", "server URL used by `register` when --server is not given"),
    "ca": (
        _opt_path,
        None,
        "PEM file of CA certificates to trust for the server; empty = system CAs",
    ),
    "http_timeout": (_positive_float, 60.0, "seconds to wait for one HTTP request"),
    "lock_timeout": (
        _positive_float,
        300.0,
        "seconds to wait for the dpkg lock before failing a job",
    ),
    "apt_timeout": (
        _positive_float,
        3600.0,
        "seconds one apt-get call may run before it is killed",
    ),
    "backoff_initial": (_positive_float, 30.0, "first retry delay when the server is unreachable"),
    "backoff_max": (_positive_float, 3600.0, "cap of the exponential retry delay"),
    "jitter": (_fraction, 0.1, "fraction of the interval added or removed at random"),
    "log_level": (_str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
}


class Config:
    """Resolved settings; attribute access keeps call sites short (config.state_dir)."""

    def __init__(self, values: Dict[str, Any], source_file: Optional[str]) -> None:
        self.values = values
        self.source_file = source_file

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def read_file(path: str, required: bool) -> Dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        if required:
            raise ConfigError("config file %s does not exist" % path) from None
        return {}
    except (OSError, configparser.Error) as e:
        raise ConfigError("cannot read config file %s: %s" % (path, e)) from e
    if not parser.has_section("agent"):
        return {}
    raw = dict(parser.items("agent"))
    unknown = sorted(set(raw) - set(OPTIONS))
    if unknown:
        raise ConfigError("%s: unknown key(s) in [agent]: %s" % (path, ", ".join(unknown)))
    return raw


def load(cli: Dict[str, Any], config_file: Optional[str]) -> Config:
    """Merge in precedence order. `cli` holds only options given on the command line (not None)."""
    required = config_file is not None
    path = config_file or os.environ.get("UUS_AGENT_CONFIG") or DEFAULT_CONFIG_FILE
    raw = read_file(path, required)
    values: Dict[str, Any] = {}
    for key, (parse, default, _help) in OPTIONS.items():
        parse_fn: Callable[[str], Any] = parse
        if cli.get(key) is not None:
            value = cli[key]
            values[key] = parse_fn(value) if isinstance(value, str) else value
        elif key in raw:
            try:
                values[key] = parse_fn(raw[key])
            except ValueError as e:
                raise ConfigError("%s: [agent] %s = %r: %s" % (path, key, raw[key], e)) from e
        else:
            values[key] = default
    if values["log_level"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING or ERROR")
    return Config(values, path if raw or required else None)
