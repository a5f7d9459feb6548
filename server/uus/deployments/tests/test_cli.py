"""The contract commands of design.md, run as a user would (`uus ...` in a subprocess)."""

import json

import pytest

from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, rings_make
from uus.inventory.tests.factories import entries, entry, machine_make

pytestmark = pytest.mark.system


def test_contract_commands(uus_cli):
    rings_make()
    jq_archive()
    for h in ("t1", "p1"):
        machine_make(h, packages=entries(entry("jq", JQ_OLD, source="jq")), release="12", os_id="debian")
    assert uus_cli("machines", "set-ring", "t1", "test").returncode == 0
    rings = json.loads(uus_cli("rings", "list", "--json").stdout)
    assert [(r["name"], r["machines"]) for r in rings] == [("test", 1), ("production", 1)]
    r = uus_cli("approvals", "set", "test", "jq", JQ_NEW, "approved")
    assert r.returncode == 0, r.stderr
    r = uus_cli("approvals", "set", "test", "jq", "bad version", "approved")
    assert r.returncode == 1 and "not a valid Debian version" in r.stderr
    r = uus_cli("machines", "set-ring", "t1", "nowhere")
    assert r.returncode == 1 and "no ring named 'nowhere'" in r.stderr
    r = uus_cli("deployments", "create", "--target", "ring:test", "--json")
    assert r.returncode == 0, r.stderr
    dep = json.loads(r.stdout)
    shown = json.loads(uus_cli("deployments", "show", str(dep["id"]), "--json").stdout)
    assert shown["id"] == dep["id"] and [j["machine"] for j in shown["jobs"]] == ["t1"]
    assert shown["jobs"][0]["params"] == {"packages": [f"jq={JQ_NEW}"], "update": True}
    r = uus_cli("deployments", "create", "--target", "nothing", "--json")
    assert r.returncode == 1 and "ring:NAME" in r.stderr
    later = json.loads(
        uus_cli("deployments", "create", "--target", "machine:p1", "--at", "2099-01-01T00:00Z", "--json").stdout
    )
    assert later["state"] == "scheduled" and later["counts"]["waiting"] == 1
    assert uus_cli("machines", "set-ring", "--help").returncode == 0
