"""Inventory entries: validation, the protocol's hash (its examples are a test vector), chunking."""

import json
from pathlib import Path

import pytest

from uus.inventory import packages as pk
from uus.inventory.exceptions import InvalidInventory

EXAMPLES = Path(__file__).resolve().parents[4] / "protocol" / "v1" / "examples"


def example(name):
    return json.loads((EXAMPLES / name).read_text())


def test_protocol_examples_are_a_hash_test_vector():
    full = example("inventory-full-request.json")
    delta = example("inventory-delta-request.json")
    base = pk.entries_from_json(full["packages"])
    assert pk.inventory_hash(base) == full["inventory_hash"]
    assert delta["base_hash"] == full["inventory_hash"]
    after = pk.apply_delta(base, pk.entries_from_json(delta["added"], "added"), pk.keys_from_json(delta["removed"]))
    assert pk.inventory_hash(after) == delta["inventory_hash"]


def test_empty_inventory_hashes_the_empty_string():
    assert pk.inventory_hash([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_entries_are_sorted_by_name_then_architecture_in_code_point_order():
    pkgs = [
        {"name": n, "architecture": a, "version": "1.0", "source": n, "source_version": "1.0", "status": "installed"}
        for n, a in [("libc6", "i386"), ("Zz".lower(), "all"), ("libc6", "amd64"), ("lib+x", "all")]
    ]
    assert [(e[0], e[1]) for e in pk.entries_from_json(pkgs)] == [
        ("lib+x", "all"),
        ("libc6", "amd64"),
        ("libc6", "i386"),
        ("zz", "all"),
    ]


BAD = [
    ("not a list", "x", "not a list"),
    ("entry not an object", ["bash"], "must be an object"),
    (
        "missing field",
        [{"name": "bash", "architecture": "amd64", "version": "1", "source": "bash", "status": "installed"}],
        "source_version is missing",
    ),
    (
        "number version",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": 5,
                "source": "bash",
                "source_version": "5",
                "status": "installed",
            }
        ],
        "version is missing or not a string",
    ),
    (
        "uppercase name",
        [
            {
                "name": "Bash",
                "architecture": "amd64",
                "version": "1",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid package name",
    ),
    (
        "name with space",
        [
            {
                "name": "ba sh",
                "architecture": "amd64",
                "version": "1",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid package name",
    ),
    (
        "tab in name",
        [
            {
                "name": "bash\tx",
                "architecture": "amd64",
                "version": "1",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid package name",
    ),
    (
        "bad epoch",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": "x:1.0",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid Debian version",
    ),
    (
        "empty revision",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": "1.0-",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid Debian version",
    ),
    (
        "space in version",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": "1.0 2",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid Debian version",
    ),
    (
        "bad source version",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": "1",
                "source": "bash",
                "source_version": "",
                "status": "installed",
            }
        ],
        "invalid Debian source version",
    ),
    (
        "unknown status",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": "1",
                "source": "bash",
                "source_version": "1",
                "status": "broken",
            }
        ],
        "unknown dpkg status",
    ),
    (
        "bad architecture",
        [
            {
                "name": "bash",
                "architecture": "AMD64",
                "version": "1",
                "source": "bash",
                "source_version": "1",
                "status": "installed",
            }
        ],
        "invalid architecture",
    ),
    (
        "duplicate",
        [
            {
                "name": "bash",
                "architecture": "amd64",
                "version": v,
                "source": "bash",
                "source_version": v,
                "status": "installed",
            }
            for v in ("1", "2")
        ],
        "twice",
    ),
]


@pytest.mark.parametrize(("packages", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_entries_are_refused_with_a_reason(packages, message):
    with pytest.raises(InvalidInventory) as exc:
        pk.entries_from_json(packages)
    assert message in exc.value.message or message in json.dumps(exc.value.details)


def test_versions_dpkg_only_warns_about_are_accepted():
    """dpkg installs packages whose upstream does not start with a digit; the machine has them."""
    assert pk.valid_version("a1.0-1") and pk.valid_version("1:2.38.1-5+deb12u3") and pk.valid_version("1.0~rc1")


def test_chunks_cover_every_entry_once_and_are_stable():
    entries = sorted(
        ((f"pkg{i}", "amd64", f"1.{i}", f"src{i % 7}", f"1.{i}", "installed") for i in range(300)),
        key=lambda e: (e[0], e[1]),
    )
    chunks = pk.split_chunks(entries)
    assert sorted(e for c in chunks.values() for e in c) == entries
    assert len(chunks) == pk.BUCKETS
    changed = [e if e[0] != "pkg7" else (*e[:2], "9.9", *e[3:]) for e in entries]
    again = pk.split_chunks(changed)
    assert len(set(chunks) ^ set(again)) == 2  # one chunk replaced by another, the rest shared
