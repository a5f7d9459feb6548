"""The inventory parser must say exactly what dpkg-query says, on real status files."""

from __future__ import annotations

import lzma
from pathlib import Path

from uus_agent import dpkg as agent_dpkg

from conftest import DATA, deb, dpkg, dpkg_query


def test_sample_status_equals_dpkg_query(tmp_path: Path) -> None:
    admin = tmp_path / "admin"
    admin.mkdir()
    (admin / "status").write_bytes(
        lzma.decompress((DATA / "dpkg-status.debian12-sample.xz").read_bytes())
    )
    assert agent_dpkg.read_inventory(str(tmp_path / "no-root")) == []  # no dpkg db: empty
    ours = agent_dpkg.parse_status_text((admin / "status").read_text())
    theirs = dpkg_query(admin)
    assert len(ours) == 710
    assert ours == theirs
    by_name = {p["name"]: p for p in ours}
    # binNMU and epoch cases the README of the sample points out
    assert (
        by_name["bash"]["version"] == "5.2.15-2+b8"
        and by_name["bash"]["source_version"] == "5.2.15-2"
    )
    assert by_name["bsdutils"]["source"] == "util-linux"
    assert by_name["bsdutils"]["version"].startswith("1:")


def test_unusual_states_and_syntax_equal_dpkg_query(tmp_path: Path) -> None:
    """not-installed is skipped, half-installed/config-files kept, field names case-insensitive,
    continuation lines do not leak into fields."""
    admin = tmp_path / "admin"
    admin.mkdir()
    (admin / "status").write_text(
        "Package: aaa\nStatus: purge ok not-installed\nArchitecture: amd64\n\n"
        "Package: bbb\nStatus: install reinstreq half-installed\nPriority: optional\n"
        "Architecture: amd64\nSource: bsrc (1:2.0-1)\nVersion: 1:2.0-1+b1\nMaintainer: m\n"
        "Description: x\n continuation: line that looks like a field\n .\n more\n\n"
        "Package: ccc\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 3.0\n"
        "Maintainer: m\nDescription: d\n\n"
        "Package: ddd\nStatus: install ok not-installed\nArchitecture: amd64\nVersion: 4.0\n\n"
        "package: eee\nstatus: install ok unpacked\narchitecture: amd64\nversion: 5.0\n"
        "maintainer: m\ndescription: d\nsource: esrc\n"
    )
    ours = agent_dpkg.parse_status_text((admin / "status").read_text())
    assert ours == dpkg_query(admin)
    assert [(p["name"], p["status"]) for p in ours] == [
        ("bbb", "half-installed"),
        ("ccc", "config-files"),
        ("eee", "unpacked"),
    ]


def test_real_installs_equal_dpkg_query(root: Path) -> None:
    dpkg(
        root,
        "-i",
        deb("hello_"),
        deb("sl_"),
        deb("figlet_"),
        deb("libjq1_1.6-2.1+deb12u2"),
        deb("jq_1.6-2.1+deb12u2"),
    )
    dpkg(root, "-r", "figlet")  # has a conffile: stays as config-files
    ours = agent_dpkg.read_inventory(str(root))
    assert ours == dpkg_query(root / "var/lib/dpkg")
    states = {p["name"]: p["status"] for p in ours}
    assert states["figlet"] == "config-files" and states["hello"] == "installed"


def test_hash_is_canonical_and_stable() -> None:
    a = {
        "name": "a",
        "architecture": "amd64",
        "version": "1",
        "source": "a",
        "source_version": "1",
        "status": "installed",
    }
    b = dict(a, name="b", version="1:2~rc1", source="bsrc")
    h = agent_dpkg.inventory_hash([a, b])
    assert h == agent_dpkg.inventory_hash([b, a])  # order of input does not matter
    import hashlib

    lines = "a\tamd64\t1\ta\t1\tinstalled\nb\tamd64\t1:2~rc1\tbsrc\t1\tinstalled\n"
    assert h == hashlib.sha256(lines.encode()).hexdigest()
    for field in agent_dpkg.PACKAGE_FIELDS:  # every field is part of the identity
        assert agent_dpkg.inventory_hash([a, dict(b, **{field: "zz"})]) != h
    assert agent_dpkg.inventory_hash([]) == hashlib.sha256(b"").hexdigest()


def test_delta_of_real_install_and_removal(root: Path) -> None:
    base = agent_dpkg.read_inventory(str(root))
    dpkg(root, "-i", deb("sl_"), deb("figlet_"))
    installed = agent_dpkg.read_inventory(str(root))
    added, removed = agent_dpkg.compute_delta(base, installed)
    assert [p["name"] for p in added] == ["figlet", "sl"] and removed == []
    assert added == [p for p in dpkg_query(root / "var/lib/dpkg") if p["name"] in ("figlet", "sl")]

    dpkg(root, "-r", "sl", "figlet")
    after = agent_dpkg.read_inventory(str(root))
    added, removed = agent_dpkg.compute_delta(installed, after)
    assert removed == [{"name": "sl", "architecture": "amd64"}]  # gone entirely
    assert [(p["name"], p["status"]) for p in added] == [
        ("figlet", "config-files")
    ]  # changed state
    rebuilt = agent_dpkg.apply_delta(installed, added, removed)
    assert rebuilt == after
    assert agent_dpkg.inventory_hash(rebuilt) == agent_dpkg.inventory_hash(
        dpkg_query(root / "var/lib/dpkg")
    )


def test_version_changes_treat_config_files_as_absent() -> None:
    before = {("figlet", "amd64"): "2.2.5-3+b1", ("jq", "amd64"): "1.6-2.1+deb12u2"}
    after = {
        ("figlet", "amd64"): None,
        ("jq", "amd64"): "1.6-2.1+deb12u3",
        ("hello", "amd64"): "2.10-3",
    }
    assert agent_dpkg.version_changes(before, after) == [
        {"name": "figlet", "architecture": "amd64", "before": "2.2.5-3+b1", "after": None},
        {"name": "hello", "architecture": "amd64", "before": None, "after": "2.10-3"},
        {
            "name": "jq",
            "architecture": "amd64",
            "before": "1.6-2.1+deb12u2",
            "after": "1.6-2.1+deb12u3",
        },
    ]
