"""Test data for the directory app: machines (only the fields matching uses), sources and users."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from uus.directory import services
from uus.directory.ldapclient import dn_key
from uus.inventory.models import Machine

DATA = Path(__file__).parent / "data"
ACCEPTANCE = DATA / "acceptance"
WAYLAND_NOTICE = DATA / "exposure" / "USN-5614-1.json"  # wayland on 22.04: fixed in 1.20.0-1ubuntu0.1
BASE = "dc=corp,dc=test"
ADMIN_DN = "cn=admin,dc=corp,dc=test"
ADMIN_PW = "admin-secret"
C = "ou=Computers,dc=corp,dc=test"


def machine_make(hostname: str, fqdn: str = "") -> Machine:
    return Machine.objects.create(
        hostname=hostname,
        fqdn=fqdn or hostname,
        client_id="m-" + secrets.token_hex(12),
        secret_hash=secrets.token_hex(16),  # 128-bit hashes, as inventory stores them
    )


def wayland_on(machine: Machine, version: str) -> Machine:
    """Give ``machine`` (on Ubuntu 22.04) an inventory of libwayland-client0 from source wayland at
    ``version``, through the inventory service (which has the exposure app evaluate it)."""
    from uus.inventory import packages as pk
    from uus.inventory.services import inventory_apply_full

    Machine.objects.filter(pk=machine.pk).update(release="22.04")
    machine.refresh_from_db()
    entries = [("libwayland-client0", "amd64", version, "wayland", version, "installed")]
    return inventory_apply_full(machine=machine, inventory_hash=pk.inventory_hash(entries), entries=entries)


def wayland_notice_import() -> None:
    """USN-5614-1 into the catalog; machines below its fixed version become exposed."""
    from uus.catalog.services import notices_import

    result = notices_import(str(WAYLAND_NOTICE))
    assert not result.failed, result.failed


def expected_ous() -> dict[str, list[str]]:
    """OU DN -> host names below it, as the acceptance check expects them."""
    return json.loads((ACCEPTANCE / "expected-ous.json").read_text())


def acceptance_hostnames() -> list[str]:
    return sorted({h for hosts in expected_ous().values() for h in hosts})


def source_make(server, name: str = "corp", **kw):
    """A directory source for a SlapdServer, bound as its root DN (unless told otherwise)."""
    kw.setdefault("url", server.url)
    kw.setdefault("base_dn", BASE)
    kw.setdefault("bind_dn", server.root_dn)
    kw.setdefault("bind_password", server.root_pw)
    return services.directory_source_create(name=name, **kw)


def same_dn(a: str, b: str) -> bool:
    return dn_key(a) == dn_key(b)
