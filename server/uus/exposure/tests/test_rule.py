"""The exposure rule on real notices and real versions, against an independent dpkg-based reference."""

from __future__ import annotations

import pytest

from uus.catalog.services import notices_import
from uus.exposure import selectors
from uus.exposure.tests.fleet import DATA, build_fleet, dpkg_lt, load_notices, reference
from uus.inventory.tests.factories import machine_make


def _import_fleet(fleet) -> dict:
    return {
        m.hostname: machine_make(m.hostname, packages=m.packages, release=m.release, kernel=m.kernel) for m in fleet
    }


@pytest.fixture
def fleet():
    return build_fleet()


@pytest.fixture
def loaded(db, fleet):
    result = notices_import(str(DATA))
    assert result.failed == [] and result.imported == len(load_notices())
    _import_fleet(fleet)
    return fleet


def _got(rows) -> dict[tuple, dict]:
    out = {}
    for r in rows:
        key = (r["hostname"], r["notice"], r["cve"], r["package"])
        assert key not in out, f"duplicate finding {key}"
        out[key] = {"status": r["status"], "pro_only": r["pro_only"], "fixed_version": r["fixed_version"]}
    return out


def _diff(want: dict, got: dict) -> str:
    missing = sorted(set(want) - set(got), key=str)[:10]
    extra = sorted(set(got) - set(want), key=str)[:10]
    wrong = sorted((k for k in set(want) & set(got) if want[k] != got[k]), key=str)[:10]
    return f"missing {missing}\nextra {extra}\ndifferent {[(k, want[k], got[k]) for k in wrong]}"


def test_every_cve_query_equals_the_dpkg_reference(loaded):
    want = reference(loaded)
    cves = {k[2] for k in want} | {
        c for n in load_notices() for c in ([n["id"].removeprefix("UBUNTU-")] if n["id"].startswith("UBUNTU-") else [])
    }
    got: dict = {}
    for cve in sorted(c for c in cves if c):
        got.update(_got(selectors.findings(selectors.parse_query(cve))))
    # findings whose notice names no CVE at all cannot be found by CVE: none exist in this data
    assert all(k[2] for k in want)
    assert got == want, _diff(want, got)
    assert len(want) > 300  # the fleet is not trivially small


def test_every_notice_query_equals_the_dpkg_reference(loaded):
    want = reference(loaded)
    got: dict = {}
    for n in load_notices():
        rows = selectors.findings(selectors.parse_query(n["id"]))
        assert all(r["notice"] == n["id"] for r in rows)
        got.update(_got(rows))
    assert got == want, _diff(want, got)


def test_fleet_wide_query_with_not_running_kernels_equals_the_reference(loaded):
    want = reference(loaded, include_not_running=True)
    got = _got(selectors.findings(selectors.Query(), include_not_running=True))
    assert got == want, _diff(want, got)


def test_the_fleet_really_exercises_every_trap(loaded):
    """Guards the test above: each trap of the rule is present in the expected findings and answered right."""
    want = reference(loaded, include_not_running=True)
    got = _got(selectors.findings(selectors.Query(), include_not_running=True))
    pkgs = {m.hostname: {p[0]: p for p in m.packages} for m in loaded}

    def some(pred) -> list[tuple]:
        return [k for k, v in want.items() if pred(k, v)]

    bsdutils = some(lambda k, v: k[3] == "bsdutils")
    assert bsdutils and all(pkgs[k[0]]["bsdutils"][2].startswith("1:") for k in bsdutils)
    # and a bsdutils at the fixed source version (epoch 1: in its binary version) is not a finding
    fixed_bsd = [
        h
        for h, p in pkgs.items()
        if "bsdutils" in p and p["bsdutils"][5] == "installed" and not dpkg_lt(p["bsdutils"][4], "2.34-0.1ubuntu9.5")
    ]
    assert fixed_bsd and not [k for k in got if k[3] == "bsdutils" and k[0] in fixed_bsd and k[0].startswith("m2004")]
    assert some(lambda k, v: k[3].endswith("t64") and k[0].startswith("m2404"))  # t64 renames on noble
    assert some(lambda k, v: k[0].startswith("m2510"))  # interim release
    assert some(lambda k, v: v["pro_only"]) and some(lambda k, v: not v["pro_only"])
    assert some(lambda k, v: v["status"] == "no_fix")  # UBUNTU-CVE-2016-20013 has no fix
    assert some(lambda k, v: k[1] == "USN-7206-1")  # schema 1.6.3: CVEs come from `related`
    assert some(lambda k, v: k[1] == "USN-6859-1")  # no cves_map: CVEs come from `upstream`
    assert some(lambda k, v: k[1] == "USN-6719-1")  # cves_map with an empty list
    assert some(lambda k, v: "~" in pkgs[k[0]][k[3]][4])  # tilde source versions
    assert {k[1] for k in some(lambda k, v: k[2] == "CVE-2021-3782")} == {"USN-5614-1", "UBUNTU-CVE-2021-3782"}
    # superseding: a 22.04 machine at USN-6719-1's fix is still exposed to CVE-2024-28085 through the later
    # notice (derived/USN-6719-9, fixed at 2.37.2-4ubuntu3.4), and machines below both are exposed to both
    at_first_fix = some(lambda k, v: k[1] == "USN-6719-9" and pkgs[k[0]][k[3]][4] == "2.37.2-4ubuntu3.3")
    assert at_first_fix and not [k for k in want if k[1] == "USN-6719-1" and k[0] in {h for h, *_ in at_first_fix}]
    below = some(lambda k, v: k[1] == "USN-6719-1" and k[0].startswith("m2204"))
    assert below and all((h, "USN-6719-9", c, b) in want for h, _, c, b in below)
    for status in ("fixed_reboot_pending", "not_running"):
        assert some(lambda k, v, s=status: v["status"] == s)
    # a machine running the fixed kernel is not exposed to the kernel notice; its old kernel is listed apart
    booted = {k: v["status"] for k, v in got.items() if k[0].startswith("k-") and k[0].endswith("-booted")}
    assert booted and set(booted.values()) == {"not_running"}
    # a running ABI that merely starts like the vulnerable one (…-1033 / …-10330) is another kernel
    prefix = {v["status"] for k, v in got.items() if k[0].startswith("k-") and k[0].endswith("-prefix")}
    assert prefix == {"not_running"}
    # the fixed kernel's modules without its image: nothing to reboot into, the running kernel stays exposed
    noimage = {(k[3], v["status"]) for k, v in got.items() if k[0].startswith("k-") and k[0].endswith("-noimage")}
    assert noimage and {s for _, s in noimage} <= {"fix_available", "not_running"}
    assert {"fix_available"} <= {s for _, s in noimage}
    # removed packages whose configuration files remain (dpkg config-files) never count
    removed = [(h, n) for h, p in pkgs.items() for n, e in p.items() if e[5] != "installed"]
    assert removed and not [k for k in got if (k[0], k[3]) in removed]
    assert want == got


def test_the_real_iso_machine_is_exposed_to_regresshion_and_util_linux(loaded):
    """The ISO README's claim, checked: a 22.04.2 server without updates has openssh and util-linux holes."""
    rows = selectors.findings(selectors.Query(machine_id=None, package="openssh"))
    iso = [r for r in rows if r["hostname"] == "iso-2204" and r["notice"] == "USN-6859-1"]
    assert {r["package"] for r in iso} == {"openssh-server", "openssh-sftp-server"}
    assert all(r["cve"] == "CVE-2024-6387" and r["fixed_version"] == "1:8.9p1-3ubuntu0.10" for r in iso)
    util = selectors.findings(selectors.parse_query("USN-6719-1"))
    assert {r["package"] for r in util if r["hostname"] == "iso-2204"} >= {"uuid-runtime"}


def test_package_query_compares_source_and_binary_versions_each_in_their_own_order(loaded):
    """`package:util-linux<V` compares source versions, `package:bsdutils<V` binary versions (with epoch)."""
    want = reference(loaded)
    by_source = _got(selectors.findings(selectors.parse_query("package:util-linux<2.34-0.1ubuntu9.5")))
    pkgs = {m.hostname: {p[0]: p for p in m.packages} for m in loaded}
    expect = {
        k: v
        for k, v in want.items()
        if pkgs[k[0]][k[3]][3] == "util-linux" and dpkg_lt(pkgs[k[0]][k[3]][4], "2.34-0.1ubuntu9.5")
    }
    assert expect and by_source == expect
    by_binary = _got(selectors.findings(selectors.parse_query("package:bsdutils<1:2.34-0.1ubuntu9.5")))
    expect = {
        k: v
        for k, v in want.items()
        if k[3] == "bsdutils" and dpkg_lt(pkgs[k[0]]["bsdutils"][2], "1:2.34-0.1ubuntu9.5")
    }
    assert expect and by_binary == expect


@pytest.mark.parametrize("text", ["", "CVE-20", "package:Bad Name", "package:curl<not a version!", "USN-x"])
def test_bad_queries_get_a_clear_error(text):
    from uus.core.exceptions import UusError

    with pytest.raises(UusError) as exc:
        selectors.parse_query(text)
    assert exc.value.code == "invalid_query"


def test_search_counts_and_pages_agree_with_the_full_list(loaded):
    """The result page's counts are worked out per group of alike machines; they must equal counting the
    full per-machine list, and its pages must cover the list exactly once."""
    queries = [n["id"] for n in load_notices()] + ["CVE-2024-28085", "package:openssh", "package:curl"]
    for text in queries:
        q = selectors.parse_query(text)
        full = selectors.findings(q)
        page = selectors.search(q, limit=3)
        counts = {k: v for k, v in page["summary"].items() if k != "fixed"}
        assert counts == selectors.summary(full), text
        seen, offset = [], 0
        while True:
            part = selectors.search(q, limit=3, offset=offset)["findings"]
            if not part:
                break
            seen += part
            offset += 3
        key = lambda r: (r["hostname"], r["notice"], r["cve"], r["package"])  # noqa: E731
        assert sorted(map(key, seen)) == sorted(map(key, full)), text


def test_fleet_overview_counts_each_exposed_machine_once_at_its_worst_priority(loaded):
    from uus.catalog.choices import priority_rank

    rows = selectors.findings(selectors.Query())
    worst: dict[str, int] = {}
    for r in rows:
        worst[r["hostname"]] = max(worst.get(r["hostname"], 0), priority_rank(r["priority"]))
    overview = selectors.fleet_overview()
    assert overview["exposed_machines"] == len(worst) == sum(overview["by_priority"].values())
    assert overview["findings"] == len(rows)
    names = {0: "unknown", 1: "negligible", 2: "low", 3: "medium", 4: "high", 5: "critical"}
    want_by_priority: dict[str, int] = {}
    for rank in worst.values():
        want_by_priority[names[rank]] = want_by_priority.get(names[rank], 0) + 1
    assert overview["by_priority"] == want_by_priority
    by_notice: dict[str, set] = {}
    for r in rows:
        by_notice.setdefault(r["notice"], set()).add(r["hostname"])
    assert overview["top_notices"][0][1] == max(len(v) for v in by_notice.values())
    assert dict(overview["top_notices"]) == {n: len(by_notice[n]) for n, _ in overview["top_notices"]}
