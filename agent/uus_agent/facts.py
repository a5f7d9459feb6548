"""Facts about the machine, read from --root so that one host can simulate many machines.

Everything is read from files under ROOT (never from the running host) except where the host is
the only source and ROOT is "/": socket for the hostname, platform for the kernel. That keeps a test
root's identity exactly what its files say.
"""

from __future__ import annotations

import glob
import os
import platform
import shlex
import socket
import subprocess
from typing import Any, Dict, List, Optional

from uus_agent.state import State

_MACHINE_TO_DEB_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "i386",
    "i686": "i386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def _p(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None


def _first_line(path: str) -> Optional[str]:
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def hostname(root: str) -> str:
    name = _first_line(_p(root, "/etc/hostname"))
    if name:
        return name
    return socket.gethostname()


def fqdn(root: str, host: str) -> str:
    """A dotted name from ROOT/etc/hosts, else the resolver (only for the real root), else host."""
    if "." in host:
        return host
    text = _read(_p(root, "/etc/hosts")) or ""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and host in words[1:]:
            for w in words[1:]:
                if w.startswith(host + "."):
                    return w
    if os.path.realpath(root) == "/":
        name = socket.getfqdn(host)
        if name.startswith(host + "."):
            return name
    return host


def machine_id(root: str, state: State) -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        value = _first_line(_p(root, path))
        if value:
            return value
    return state.generated_machine_id()


def os_release(root: str) -> Dict[str, Optional[str]]:
    text = _read(_p(root, "/etc/os-release")) or _read(_p(root, "/usr/lib/os-release")) or ""
    values: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = parts[0] if parts else ""
    return {
        "id": values.get("ID"),
        "version_id": values.get("VERSION_ID"),
        "version_codename": values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME"),
        "pretty_name": values.get("PRETTY_NAME"),
    }


def kernel(root: str) -> Optional[str]:
    """ROOT/proc/sys/kernel/osrelease is what `uname -r` prints when ROOT is the real /."""
    value = _first_line(_p(root, "/proc/sys/kernel/osrelease"))
    if value:
        return value
    if os.path.realpath(root) == "/":
        return platform.release()
    return None


def architecture(root: str) -> str:
    value = _first_line(_p(root, "/var/lib/dpkg/arch"))
    if value:
        return value
    try:
        out = subprocess.run(
            ["dpkg", "--print-architecture"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=30,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    machine = platform.machine()
    return _MACHINE_TO_DEB_ARCH.get(machine, machine)


def reboot_required(root: str) -> bool:
    return any(os.path.exists(_p(root, d + "/reboot-required")) for d in ("/var/run", "/run"))


def reboot_required_packages(root: str) -> List[str]:
    seen: List[str] = []
    for d in ("/var/run", "/run"):
        for line in (_read(_p(root, d + "/reboot-required.pkgs")) or "").splitlines():
            name = line.strip()
            if name and name not in seen:
                seen.append(name)
    return seen


def apt_sources(root: str) -> List[str]:
    """One string per one-line source and per deb822 stanza, comments and blanks dropped."""
    sources: List[str] = []
    lists = [_p(root, "/etc/apt/sources.list")]
    lists += sorted(glob.glob(_p(root, "/etc/apt/sources.list.d/*.list")))
    for path in lists:
        for line in (_read(path) or "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                sources.append(line)
    for path in sorted(glob.glob(_p(root, "/etc/apt/sources.list.d/*.sources"))):
        stanza: List[str] = []
        for line in [*(_read(path) or "").splitlines(), ""]:
            if line.lstrip().startswith("#"):
                continue
            if line.strip():
                stanza.append(line.rstrip())
            elif stanza:
                sources.append("\n".join(stanza))
                stanza = []
    return sources


def _zone_name(value: str) -> Optional[str]:
    """An IANA zone name ("Europe/Berlin", "UTC") or None: no spaces, no "..", no leading "/"."""
    value = value.strip()
    if (
        not value
        or value.startswith("/")
        or ".." in value.split("/")
        or any(c.isspace() for c in value)
    ):
        return None
    return value if len(value) <= 64 else None


def timezone(root: str) -> Optional[str]:
    """The machine's time zone: ROOT/etc/timezone (Debian), else the zoneinfo name the
    ROOT/etc/localtime symlink points to (systemd, Ubuntu); None when neither says."""
    zone = _zone_name(_first_line(_p(root, "/etc/timezone")) or "")
    if zone:
        return zone
    try:
        target = os.readlink(_p(root, "/etc/localtime"))
    except OSError:
        return None
    _, sep, zone = target.partition("zoneinfo/")
    return _zone_name(zone) if sep else None


def gather(root: str, state: State) -> Dict[str, Any]:
    host = hostname(root)
    return {
        "hostname": host,
        "fqdn": fqdn(root, host),
        "machine_id": machine_id(root, state),
        "os": os_release(root),
        "kernel": kernel(root),
        "architecture": architecture(root),
        "reboot_required": reboot_required(root),
        "reboot_required_packages": reboot_required_packages(root),
        "apt_sources": apt_sources(root),
        "timezone": timezone(root),
    }
