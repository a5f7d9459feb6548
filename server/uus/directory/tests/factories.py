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
BASE = "dc=corp,dc=test"
ADMIN_DN = "cn=admin,dc=corp,dc=test"
ADMIN_PW = "admin-secret"
C = "ou=Computers,dc=corp,dc=test"


def machine_make(hostname: str, fqdn: str = "") -> Machine:
    return Machine.objects.create(
        hostname=hostname,
        fqdn=fqdn or hostname,
        client_id="m-" + secrets.token_hex(12),
        secret_hash=secrets.token_hex(32),
    )


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
