"""Test data built through the real services (no factory_boy needed for these few shapes)."""

from __future__ import annotations

import itertools

from uus.inventory import packages as pk
from uus.inventory import services
from uus.inventory.models import Machine

_counter = itertools.count(1)


def facts_make(hostname: str | None = None, *, release: str = "22.04", os_id: str = "ubuntu", **extra) -> dict:
    hostname = hostname or f"host-{next(_counter):04d}"
    codename = {"22.04": "jammy", "24.04": "noble", "20.04": "focal", "12": "bookworm", "13": "trixie"}.get(release)
    facts = {
        "hostname": hostname,
        "fqdn": f"{hostname}.example.org",
        "machine_id": f"{abs(hash(hostname)):032x}"[:32],
        "os": {
            "id": os_id,
            "version_id": release,
            "version_codename": codename,
            "pretty_name": f"{os_id.title()} {release}",
        },
        "kernel": "5.15.0-60-generic",
        "architecture": "amd64",
        "reboot_required": False,
        "reboot_required_packages": [],
        "apt_sources": ["deb http://archive.ubuntu.com/ubuntu jammy main"],
    }
    facts.update(extra)
    return facts


def entry(
    name: str,
    version: str,
    *,
    arch: str = "amd64",
    source: str | None = None,
    source_version: str | None = None,
    status: str = "installed",
) -> pk.Entry:
    return (name, arch, version, source or name, source_version or version, status)


def entries(*items: pk.Entry) -> list[pk.Entry]:
    return sorted(items, key=lambda e: (e[0], e[1]))


def as_json(items: list[pk.Entry]) -> list[dict]:
    return [dict(zip(pk.FIELDS, e, strict=True)) for e in items]


def machine_register(hostname: str | None = None, *, group: str = "", **facts) -> services.Credentials:
    _, key = services.enrollment_token_create(group=group)
    return services.machine_register(token=key, facts=facts_make(hostname, **facts), agent_version="test")


def machine_make(
    hostname: str | None = None, *, packages: list[pk.Entry] | None = None, group: str = "", **facts
) -> Machine:
    machine = machine_register(hostname, group=group, **facts).machine
    if packages is not None:
        services.inventory_apply_full(machine=machine, inventory_hash=pk.inventory_hash(packages), entries=packages)
    return machine
