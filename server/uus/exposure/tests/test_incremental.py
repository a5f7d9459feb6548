"""Findings kept current per event: a machine's new inventory re-evaluates its own set only, an imported
notice only the sets that have its source packages; both end equal to a full rebuild."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from uus.catalog.services import notices_import
from uus.exposure import selectors, services
from uus.exposure.models import EvaluatedSet, Finding
from uus.exposure.tests.fleet import DATA, build_fleet, dpkg_lt, reference
from uus.inventory import packages as pk
from uus.inventory import selectors as inventory_selectors
from uus.inventory import services as inventory
from uus.inventory.models import Machine, Package
from uus.inventory.tests.factories import machine_make


def _rows() -> set[tuple]:
    return set(Finding.objects.values_list("id", "package_set_id", "affected_id", "package_id"))


def _answers() -> list[dict]:
    return selectors.findings(selectors.Query(), include_not_running=True)


@pytest.fixture
def fleet(db):
    fleet = build_fleet(machines_per_release=3)
    for m in fleet:
        machine_make(m.hostname, packages=m.packages, release=m.release, kernel=m.kernel)
    return fleet


def test_a_machines_new_inventory_re_evaluates_only_its_own_set(fleet, tmp_path):
    notices_import(str(DATA))
    target = next(m for m in fleet if m.hostname.startswith("m2004") and any(p[0] == "bsdutils" for p in m.packages))
    machine = Machine.objects.get(hostname=target.hostname)
    old_set = machine.package_set_id
    before = _rows()
    # the machine upgrades util-linux to the fixed version (bsdutils keeps its epoch)
    fixed = "2.34-0.1ubuntu9.5"
    target.packages = sorted(
        (n, a, ("1:" + fixed) if n == "bsdutils" else fixed, s, fixed, st)
        if s == "util-linux"
        else (n, a, v, s, sv, st)
        for n, a, v, s, sv, st in target.packages
    )
    with CaptureQueriesContext(connection) as queries:
        inventory.inventory_apply_full(
            machine=machine, inventory_hash=pk.inventory_hash(target.packages), entries=target.packages
        )
    machine.refresh_from_db()
    assert machine.package_set_id != old_set
    inserts = [
        q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"] and "exposure_finding" in q["sql"]
    ]
    pair = EvaluatedSet.objects.get(package_set_id=machine.package_set_id, release=machine.release)
    changed = inventory_selectors.package_sets_diff(old_set, machine.package_set_id).changed_package_ids
    assert changed and len(changed) < 10
    # two statements: the old set's findings of the unchanged packages copied, and only the changed
    # packages matched against the notices (for this one new (set, release) pair)
    assert len(inserts) == 2
    assert f"f.package_set_id = {old_set}" in inserts[0] and "NOT IN" in inserts[0]
    assert f"e.id = {pair.pk} AND m.package_id IN ({','.join(map(str, sorted(changed)))})" in inserts[1]
    after = _rows()
    # nothing of any other set was deleted or rewritten; only the new set gained rows
    assert {r for r in before if r[1] != machine.package_set_id} <= after
    assert {r[1] for r in after - before} == {machine.package_set_id}
    # the old set keeps its findings until inventory's collector deletes the unused set (they cascade)
    got = {(r["notice"], r["cve"], r["package"]) for r in _answers() if r["hostname"] == target.hostname}
    want = {k[1:] for k in reference([target], include_not_running=True)}
    assert got == want and not [k for k in got if k[2] == "bsdutils"]
    # the copied and re-evaluated findings are exactly what a full evaluation of the new set makes
    incremental = _answers()
    services.exposure_rebuild()
    assert _answers() == incremental


def test_a_large_change_or_an_unevaluated_old_set_is_evaluated_whole(fleet):
    notices_import(str(DATA))
    target = next(m for m in fleet if m.hostname == "iso-2204")
    machine = Machine.objects.get(hostname=target.hostname)
    # a new inventory sharing nothing with the old one (every package renamed away but openssh's)
    packages = [p for p in target.packages if p[3] == "openssh"] + [
        (f"site-{i}", "amd64", "1.0", f"site-{i}", "1.0", "installed") for i in range(services.DELTA_LIMIT + 5)
    ]
    with CaptureQueriesContext(connection) as queries:
        inventory.inventory_apply_full(machine=machine, inventory_hash=pk.inventory_hash(packages), entries=packages)
    inserts = [
        q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"] and "exposure_finding" in q["sql"]
    ]
    assert len(inserts) == 1 and "e.id IN (" in inserts[0] and "NOT IN" not in inserts[0]
    got = {(r["notice"], r["cve"], r["package"]) for r in _answers() if r["hostname"] == target.hostname}
    target.packages = packages
    assert got == {k[1:] for k in reference([target], include_not_running=True)} and got


def test_importing_a_notice_touches_only_sets_with_its_source_and_equals_a_rebuild(fleet, tmp_path):
    # everything but util-linux's notice first
    for sub in ("usn", "cve", "derived"):
        (tmp_path / sub).mkdir()
        for p in (DATA / sub).glob("*.json"):
            if p.name not in ("USN-6719-1.json", "USN-6719-9.json"):
                (tmp_path / sub / p.name).write_bytes(p.read_bytes())
    notices_import(str(tmp_path))
    before = _rows()
    assert set(EvaluatedSet.objects.values_list("package_set_id", "release")) == set(
        Machine.objects.values_list("package_set_id", "release")
    )
    result = notices_import(str(DATA / "usn" / "USN-6719-1.json"))
    assert result.imported == 1 and notices_import(str(DATA / "derived" / "USN-6719-9.json")).imported == 1
    after = _rows()
    assert before <= after  # no other finding was touched
    new_sets = {r[1] for r in after - before}
    with_source = set(
        Machine.objects.filter(
            package_set__set_chunks__chunk__members__package__in=Package.objects.filter(source="util-linux"),
            package_set__set_chunks__chunk__members__status=0,
        ).values_list("package_set_id", flat=True)
    )
    assert new_sets and new_sets <= with_source
    incremental = _answers()
    services.exposure_rebuild()
    assert _answers() == incremental
    assert reference(fleet, include_not_running=True).keys() == {
        (r["hostname"], r["notice"], r["cve"], r["package"]) for r in incremental
    }


def test_a_replaced_notice_drops_its_old_findings_and_equals_a_rebuild(fleet, tmp_path):
    notices_import(str(DATA))
    doc = json.loads((DATA / "usn" / "USN-6719-1.json").read_text())
    # upstream revises the notice: its 20.04 entry now fixes at an earlier real version from its history
    entry = next(e for e in doc["affected"] if e["package"]["ecosystem"] == "Ubuntu:20.04:LTS")
    earlier = entry["versions"][-1]
    entry["ranges"][0]["events"][1]["fixed"] = earlier
    doc["modified"] = "2030-01-01T00:00:00Z"
    (tmp_path / "USN-6719-1.json").write_text(json.dumps(doc))
    assert notices_import(str(tmp_path)).updated == 1
    rows = [r for r in _answers() if r["notice"] == "USN-6719-1" and r["release"] == "20.04"]
    assert rows and all(dpkg_lt(r["installed_source_version"], earlier) for r in rows)
    assert all(r["fixed_version"] == earlier for r in rows)
    incremental = _answers()
    services.exposure_rebuild()
    assert _answers() == incremental


def test_a_later_notice_with_a_higher_fix_keeps_the_cve_open(db):
    """Several notices fix one CVE at different versions: a machine between the two fixes is still
    exposed (by the later notice) and is clear only at the highest applicable fix. The later notice is
    derived/USN-6719-9: USN-6719-1's 22.04 entry re-issued with a later real fix (as regression re-fixes
    like USN-NNNN-2 do; PROVENANCE.md)."""
    notices_import(str(DATA / "usn" / "USN-6719-1.json"))
    notices_import(str(DATA / "derived" / "USN-6719-9.json"))
    first_fix, later_fix = "2.37.2-4ubuntu3.3", "2.37.2-4ubuntu3.4"
    assert dpkg_lt(first_fix, later_fix)

    def host(name, version):
        return machine_make(
            name, release="22.04", packages=[("uuid-runtime", "amd64", version, "util-linux", version, "installed")]
        )

    host("between", first_fix)
    host("at-later", later_fix)
    rows = selectors.findings(selectors.parse_query("CVE-2024-28085"))
    assert {(r["hostname"], r["notice"]) for r in rows} == {("between", "USN-6719-9")}
    assert rows[0]["fixed_version"] == later_fix
    assert selectors.summary(rows)["machines"] == 1
