"""`uus cve ID --json|--csv` and `uus exposure rebuild` as real processes on the test database."""

from __future__ import annotations

import csv
import io
import json

import pytest

from uus.catalog.services import notices_import
from uus.exposure.models import Finding
from uus.exposure.tests.fleet import DATA
from uus.inventory.tests.factories import machine_make

pytestmark = pytest.mark.system

OLD = "2.34-0.1ubuntu4"  # util-linux on 20.04, from USN-6719-1's own version history


@pytest.fixture
def fleet(transactional_db):
    notices_import(str(DATA / "usn" / "USN-6719-1.json"))
    notices_import(str(DATA / "usn" / "USN-6944-1.json"))
    curl = "7.81.0-1ubuntu1.16"  # before USN-6944-1's 22.04 fix
    machine_make("jammy-01", release="22.04", packages=[("curl", "amd64", curl, "curl", curl, "installed")])
    pkgs = [
        ("bsdutils", "amd64", "1:" + OLD, "util-linux", OLD, "installed"),
        ("uuid-runtime", "amd64", OLD, "util-linux", OLD, "installed"),
    ]
    machine_make("focal-01", release="20.04", packages=pkgs)


def test_cve_json_has_the_contract_fields(fleet, uus_cli):
    r = uus_cli("cve", "CVE-2024-28085", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert isinstance(rows, list) and len(rows) == 2
    bsd = next(x for x in rows if x["package"] == "bsdutils")
    assert {k: bsd[k] for k in ("hostname", "notice", "cve", "source", "installed_version", "fixed_version")} == {
        "hostname": "focal-01",
        "notice": "USN-6719-1",
        "cve": "CVE-2024-28085",
        "source": "util-linux",
        "installed_version": "1:" + OLD,
        "fixed_version": "2.34-0.1ubuntu9.5",
    }
    assert bsd["status"] == "fix_available" and bsd["pro_only"] is False and "priority" in bsd
    assert bsd["fixed_binary_version"] == "1:2.34-0.1ubuntu9.5" and bsd["pocket"] == "focal-security"
    # the same answer by notice id and by package
    by_notice = json.loads(uus_cli("cve", "USN-6719-1", "--json").stdout)
    by_package = json.loads(uus_cli("cve", "package:util-linux<2.34-0.1ubuntu9.5", "--json").stdout)
    assert by_notice == rows == by_package


def test_cve_csv_and_rebuild(fleet, uus_cli):
    r = uus_cli("cve", "USN-6719-1", "--csv")
    assert r.returncode == 0, r.stderr
    assert {row["package"] for row in csv.DictReader(io.StringIO(r.stdout))} == {"bsdutils", "uuid-runtime"}
    before = sorted(Finding.objects.values_list("package_set_id", "affected_id", "package_id"))
    r = uus_cli("exposure", "rebuild")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{len(before)} findings"
    assert sorted(Finding.objects.values_list("package_set_id", "affected_id", "package_id")) == before


def test_cve_json_rates_priority_and_answers_a_bare_package_name(fleet, uus_cli):
    rows = json.loads(uus_cli("cve", "CVE-2024-7264", "--json").stdout)
    assert [(r["hostname"], r["package"], r["priority"], r["status"]) for r in rows] == [
        ("jammy-01", "curl", "medium", "fix_available")
    ]
    assert json.loads(uus_cli("cve", "package:curl", "--json").stdout) == rows


@pytest.mark.parametrize("text", ["CVE-12", "package:Bad Name", "package:curl<!!"])
def test_bad_query_exits_non_zero_with_a_message(fleet, uus_cli, text):
    r = uus_cli("cve", text, "--json")
    assert r.returncode != 0 and r.stdout == "" and r.stderr.strip()
