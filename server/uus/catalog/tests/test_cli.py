"""`uus notices import|show|list` and `uus upstream add|sync|list`, run through the CLI's own entry
point on the test database. The stored notices are checked field by field against their files, with
the expectation derived here from the raw JSON (not from the importer's parser)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime

import pytest

from uus.cli.main import main

from .loopback import serve_directory
from .test_services import KEYRING, OSV, PINNED_NOW, _archive

pytestmark = pytest.mark.django_db
CVE = re.compile(r"CVE-\d{4}-\d+\Z")
FILES = sorted(OSV.rglob("*.json"))


def uus(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ubuntu_priority(severity) -> str | None:
    order = ["negligible", "low", "medium", "high", "critical"]
    found = [s["score"].lower() for s in severity or [] if s["type"] == "Ubuntu"]
    return max(found, key=order.index) if found else None


def _vectors(severity) -> list[dict]:
    out = []
    for s in severity or []:
        v = {"type": s["type"], "vector": s["score"]}
        if s["type"].startswith("CVSS_") and v not in out:
            out.append(v)
    return out


def expected_notice(doc: dict) -> dict:
    """What the catalog must store for one OSV file, by the rules of the issue: CVEs from cves_map
    when present and non-empty, else `upstream` minus UBUNTU-, else `related`."""
    mapped = [
        c
        for e in doc.get("affected", [])
        for c in ((e.get("database_specific") or {}).get("cves_map") or {}).get("cves") or []
    ]
    cves: dict[str, dict] = {}

    def add(ident: str, priority=None, vectors=()):
        ident = ident.removeprefix("UBUNTU-")
        if not CVE.match(ident):
            return
        entry = cves.setdefault(ident, {"id": ident, "priorities": [], "cvss": []})
        entry["priorities"].append(priority)
        entry["cvss"] += [v for v in vectors if v not in entry["cvss"]]

    own = doc.get("severity")
    if doc["id"].startswith("UBUNTU-CVE-"):
        add(doc["id"], _ubuntu_priority(own), _vectors(own))
    if any(CVE.match(m["id"].removeprefix("UBUNTU-")) for m in mapped):
        for m in mapped:
            add(m["id"], _ubuntu_priority(m.get("severity")), _vectors(m.get("severity")))
    elif any(CVE.match(u.removeprefix("UBUNTU-")) for u in doc.get("upstream", [])):
        is_record = doc["id"].startswith("UBUNTU-CVE-")
        for u in doc["upstream"]:
            add(u, _ubuntu_priority(own) if is_record else None, _vectors(own) if is_record else ())
    else:
        for r in doc.get("related", []):
            add(r)
    order = ["negligible", "low", "medium", "high", "critical"]
    for c in cves.values():
        known = [p for p in c.pop("priorities") if p]
        c["priority"] = max(known, key=order.index) if known else ""
    affected = []
    for e in doc.get("affected", []):
        eco = e["package"]["ecosystem"]
        events = [ev for r in e.get("ranges", []) if r["type"] == "ECOSYSTEM" for ev in r["events"]]
        spec = e.get("ecosystem_specific") or {}
        affected.append(
            {
                "ecosystem": eco,
                "release": re.search(r"\d\d\.\d\d", eco).group(0),
                "is_lts": eco.endswith(":LTS"),
                "is_pro": eco.startswith("Ubuntu:Pro:"),
                "source": e["package"]["name"],
                "purl": e["package"].get("purl", ""),
                "introduced": next((ev["introduced"] for ev in events if "introduced" in ev), "0"),
                "fixed": next((ev["fixed"] for ev in events if "fixed" in ev), ""),
                "versions": e.get("versions", []),
                "binaries": [
                    {"name": b["binary_name"], "version": b["binary_version"]} for b in spec.get("binaries", [])
                ],
                "availability": spec.get("availability", ""),
            }
        )
    priorities = [c["priority"] for c in cves.values() if c["priority"]] + [_ubuntu_priority(own) or ""]
    priorities = [p for p in priorities if p]
    return {
        "id": doc["id"],
        "summary": doc.get("summary", ""),
        "details": doc.get("details", ""),
        "published": _when(doc.get("published") or doc["modified"]),
        "modified": _when(doc["modified"]),
        "aliases": doc.get("aliases", []),
        "related": doc.get("related", []),
        "upstream": doc.get("upstream", []),
        "references": doc.get("references", []),
        "cves": list(cves.values()),
        "priority": max(priorities, key=order.index) if priorities else "",
        "affected": affected,
    }


def _key(a: dict) -> tuple:
    return (a["ecosystem"], a["source"], a["fixed"])


def test_every_file_imports_and_each_stored_notice_matches_its_file(capsys):
    code, out, err = uus(capsys, "notices", "import", str(OSV), "--json")
    assert code == 0, err
    assert json.loads(out) == {"imported": len(FILES), "updated": 0, "unchanged": 0, "failed": []}
    code, out, _ = uus(capsys, "notices", "list", "--json")
    assert sorted(n["id"] for n in json.loads(out)) == sorted(json.loads(p.read_text())["id"] for p in FILES)
    checked_binaries = 0
    for path in FILES:
        doc = json.loads(path.read_text())
        want = expected_notice(doc)
        code, out, err = uus(capsys, "notices", "show", doc["id"], "--json")
        assert code == 0, err
        got = json.loads(out)
        for name in ("id", "summary", "details", "aliases", "related", "upstream", "references", "priority"):
            assert got[name] == want[name], (path.name, name)
        assert _when(got["published"]) == want["published"] and _when(got["modified"]) == want["modified"]
        assert got["cves"] == want["cves"], path.name
        stored = sorted(({k: a[k] for k in want["affected"][0]} for a in got["affected"]), key=_key)
        assert stored == sorted(want["affected"], key=_key), path.name
        checked_binaries += sum(len(a["binaries"]) for a in stored)
    assert checked_binaries > 600  # 669 fixed binaries with their versions in the sample


def test_the_manifest_variants_are_all_covered():
    """The sample covers each variant the issue names: LTS, interim, Pro (several), no fix yet,
    a 1.6.3 notice, UBUNTU-CVE records, an empty and a partial cves_map, binary epochs."""
    docs = [json.loads(p.read_text()) for p in FILES]
    ecosystems = {a["package"]["ecosystem"] for d in docs for a in d.get("affected", [])}
    assert any(e.endswith(":LTS") and ":Pro:" not in e for e in ecosystems)
    assert any(not e.endswith(":LTS") for e in ecosystems)  # interim, e.g. Ubuntu:25.10
    assert {e for e in ecosystems if e.startswith("Ubuntu:Pro:")} >= {"Ubuntu:Pro:Realtime:24.04:LTS"}
    assert {d["schema_version"] for d in docs} >= {"1.6.3", "1.7.0"}
    assert any(d["id"].startswith("UBUNTU-CVE-") for d in docs)


def test_show_and_list_filters_from_the_cli(capsys):
    assert uus(capsys, "notices", "import", str(OSV))[0] == 0
    code, out, _ = uus(capsys, "notices", "list", "--json", "--q", "cve-2024-28085")
    assert code == 0 and "USN-6719-1" in {n["id"] for n in json.loads(out)}
    _, out, _ = uus(capsys, "notices", "list", "--json", "--since", "2024-03-27", "--until", "2024-03-27")
    assert [n["id"] for n in json.loads(out)] == ["USN-6719-1"]  # published 2024-03-27T15:23:13Z
    _, out, _ = uus(capsys, "notices", "list", "--json", "--kind", "cve")
    assert sorted(n["id"] for n in json.loads(out)) == ["UBUNTU-CVE-2016-20013", "UBUNTU-CVE-2021-3782"]
    code, _, err = uus(capsys, "notices", "list", "--since", "last tuesday")
    assert code == 1 and "not a date" in err
    code, _, err = uus(capsys, "notices", "show", "USN-0000-0", "--json")
    assert code == 1 and "no notice USN-0000-0" in err
    code, out, _ = uus(capsys, "notices", "show", "USN-6719-1")
    assert code == 0 and "util-linux" in out and "CVE-2024-28085" in out


def test_a_malformed_file_is_named_the_rest_imported_and_the_exit_status_says_so(tmp_path, capsys):
    shutil.copy(OSV / "usn" / "USN-6719-1.json", tmp_path)
    shutil.copy(OSV.parent.parent / "osv-invalid" / "truncated.json", tmp_path / "USN-9999-1.json")
    code, out, err = uus(capsys, "notices", "import", str(tmp_path))
    assert code == 1
    assert out.strip() == "1 new, 0 updated, 0 unchanged, 1 malformed"
    line = next(x for x in err.splitlines() if x.startswith("malformed:"))
    assert line.startswith(f"malformed: {tmp_path / 'USN-9999-1.json'}: invalid JSON")
    assert uus(capsys, "notices", "show", "USN-6719-1", "--json")[0] == 0
    # again: idempotent, nothing new
    code, out, _ = uus(capsys, "notices", "import", str(tmp_path / "USN-6719-1.json"))
    assert code == 0 and out.strip() == "0 new, 0 updated, 1 unchanged, 0 malformed"


def test_upstream_add_sync_and_list_from_the_cli(tmp_path, capsys):
    _archive(tmp_path)
    with serve_directory(tmp_path / "www") as lb:
        code, out, err = uus(
            capsys,
            "upstream",
            "add",
            "debian",
            lb.url + "/debian",
            "--suites",
            "bookworm-updates",
            "--components",
            "main",
            "--architectures",
            "amd64",
            "--keyring",
            str(KEYRING),
            "--json",
        )
        assert code == 0, err
        added = json.loads(out)
        assert (added["name"], added["suites"], added["indexes"]) == ("debian", ["bookworm-updates"], [])
        code, out, err = uus(capsys, "upstream", "sync", "debian", "--json")  # the real clock: no Valid-Until
        assert code == 0, err
        assert json.loads(out) == {"debian": {"indexes_changed": 1, "indexes_unchanged": 0, "packages": 38}}
        code, out, _ = uus(capsys, "upstream", "sync")
        assert code == 0 and out.strip() == "debian: 0 index(es) changed, 1 unchanged, 0 packages"
        (tmp_path / "www/debian/dists/bookworm-updates/InRelease").write_text("garbage")
        code, _, err = uus(capsys, "upstream", "sync", "debian")
        assert code == 1 and "not a clearsigned file" in err
    code, out, _ = uus(capsys, "upstream", "list", "--json")
    (row,) = json.loads(out)
    assert "not a clearsigned file" in row["last_error"] and row["indexes"][0]["package_count"] == 38
    code, _, err = uus(capsys, "upstream", "sync", "nope")
    assert code == 1 and "no upstream named nope" in err
    code, _, err = uus(capsys, "upstream", "add", "x", "http://h/", "--suites", "a", "--components", "m",
                       "--keyring", str(tmp_path / "missing.gpg"))  # fmt: skip
    assert code == 1 and "cannot read keyring" in err
    assert PINNED_NOW  # the CLI runs on the real clock; the fixture's InRelease has no Valid-Until
