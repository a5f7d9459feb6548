"""OSV import helpers against Canonical's real notices (tests/data/usn-osv, see its README).

Expectations are computed from the raw JSON and from MANIFEST.tsv independently of the parser, so
a parser bug cannot hide behind a test that shares its logic.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import shutil
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from uus.catalog.sources.osv import (
    OsvFormatError,
    OsvSourceError,
    iter_notices,
    iter_osv_documents,
    parse_ecosystem,
    parse_notice,
)
from uus.catalog.tests.loopback import closed_port_url, serve_directory
from uus.core.debversion import version_key

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "usn-osv"
INVALID = DATA / "osv-invalid"
FILES = sorted(CORPUS.glob("osv/*/*.json"))


def manifest() -> dict[str, dict[str, str]]:
    lines = (CORPUS / "MANIFEST.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return {row["id"]: row for row in (dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:])}


def raw(path: Path) -> dict:
    return json.loads(path.read_text())


def raw_cves(doc: dict) -> list[str]:
    """The catalog's rule written out plainly: cves_map when present and non-empty, else upstream
    minus UBUNTU-, else related."""
    out = [doc["id"].replace("UBUNTU-", "")] if doc["id"].startswith("UBUNTU-CVE-") else []
    mapped = [
        c["id"]
        for e in doc.get("affected", [])
        for c in e.get("database_specific", {}).get("cves_map", {}).get("cves", [])
    ]
    upstream = [u.replace("UBUNTU-", "") for u in doc.get("upstream", []) if "CVE-" in u]
    related = [r.replace("UBUNTU-", "") for r in doc.get("related", []) if "CVE-" in r]
    out += mapped or upstream or related
    return list(dict.fromkeys(out))


def by_id(notice_id: str):
    path = next(p for p in FILES if p.stem == notice_id)
    return parse_notice(raw(path), source=str(path))


def test_corpus_is_the_upstream_text():
    """Every copied file still has the sha256 and length its MANIFEST gives (provenance)."""
    rows = manifest()
    assert len(FILES) == len(rows) == 21
    for p in FILES:
        row = rows[p.stem]
        data = p.read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], p
        assert len(data) == int(row["bytes"]), p


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_notice_matches_its_raw_json(path):
    doc = raw(path)
    row = manifest()[doc["id"]]
    n = parse_notice(doc, source=str(path))

    assert n.id == doc["id"]
    assert n.kind == ("cve" if doc["id"].startswith("UBUNTU-CVE-") else "usn")
    assert n.schema_version == doc["schema_version"] == row["schema"]
    assert n.summary == doc.get("summary", "")
    assert n.details == doc["details"]
    assert n.published == datetime.fromisoformat(row["published"].replace("Z", "+00:00"))
    assert n.published.tzinfo is not None and n.modified.tzinfo is not None
    assert n.modified >= n.published

    # CVEs: the README's rule, and MANIFEST's independent list
    assert n.cve_ids == raw_cves(doc)
    assert set(n.cve_ids) <= set(row["cves"].split(","))  # MANIFEST lists every CVE the file names
    assert all(c.startswith("CVE-") for c in n.cve_ids)

    # affected: one record per raw entry, same order, nothing lost
    assert len(n.affected) == len(doc["affected"])
    assert {a.ecosystem for a in n.affected} == set(row["releases"].split(","))
    assert {a.source_package for a in n.affected} == set(row["source_packages"].split(","))
    for a, e in zip(n.affected, doc["affected"], strict=True):
        assert a.ecosystem == e["package"]["ecosystem"]
        assert a.source_package == e["package"]["name"]
        assert a.purl == e["package"]["purl"]
        assert a.is_pro == e["package"]["ecosystem"].startswith("Ubuntu:Pro:")
        assert a.is_lts == e["package"]["ecosystem"].endswith(":LTS")
        assert a.release in e["package"]["ecosystem"].split(":")
        assert a.codename and a.codename in e["package"]["purl"]
        fixed = [ev["fixed"] for r in e["ranges"] for ev in r["events"] if "fixed" in ev]
        assert a.fixed == (fixed[0] if fixed else None)
        assert a.introduced == "0"
        assert list(a.versions) == e.get("versions", [])
        assert [(b.binary_name, b.binary_version) for b in a.binaries] == [
            (b["binary_name"], b["binary_version"]) for b in e["ecosystem_specific"].get("binaries", [])
        ]
        assert a.availability == e["ecosystem_specific"].get("availability", "")
        # Canonical lists earlier versions in dpkg order, all below the fix: the key agrees
        keys = [version_key(v) for v in a.versions]
        assert keys == sorted(keys)
        if a.fixed:
            assert all(k < version_key(a.fixed) for k in keys)

    every_fixed = {ev["fixed"] for e in doc["affected"] for r in e["ranges"] for ev in r["events"] if "fixed" in ev}
    assert {a.fixed for a in n.affected if a.fixed} == every_fixed
    assert [(r.type, r.url) for r in n.references] == [(r["type"], r["url"]) for r in doc["references"]]


def test_whole_corpus_counts():
    notices = [parse_notice(raw(p), source=str(p)) for p in FILES]
    assert sum(n.kind == "usn" for n in notices) == 19
    assert sum(n.kind == "cve" for n in notices) == 2
    affected = [a for n in notices for a in n.affected]
    raw_affected = [e for p in FILES for e in raw(p)["affected"]]
    assert len(affected) == len(raw_affected)
    raw_pro = sum(e["package"]["ecosystem"].startswith("Ubuntu:Pro:") for e in raw_affected)
    assert sum(a.is_pro for a in affected) == raw_pro
    assert sum(len(a.binaries) for a in affected) == sum(
        len(e["ecosystem_specific"].get("binaries", [])) for e in raw_affected
    )
    assert sum(len(n.cves) for n in notices) == sum(len(raw_cves(raw(p))) for p in FILES)


def test_schema_163_takes_cves_from_related():
    n = by_id("USN-7206-1")
    assert n.schema_version == "1.6.3"
    assert n.upstream == ()
    assert n.cve_ids == [f"CVE-2024-{x}" for x in ("12084", "12085", "12086", "12087", "12088", "12747")]
    assert n.priority is None


def test_empty_cves_map_falls_back_to_upstream_and_binary_epoch_is_kept():
    n = by_id("USN-6719-1")
    assert n.cve_ids == ["CVE-2024-28085"]
    assert n.cves[0].priority is None and n.priority is None
    focal = next(a for a in n.affected if a.release == "20.04")
    assert focal.fixed == "2.34-0.1ubuntu9.5"
    bins = {b.binary_name: b.binary_version for b in focal.binaries}
    assert bins["bsdutils"] == "1:2.34-0.1ubuntu9.5"
    assert bins["uuid-runtime"] == "2.34-0.1ubuntu9.5"


def test_partial_cves_map_is_the_cve_list_and_upstream_is_kept_raw():
    """USN-7800-1's cves_map names 6 of its 106 upstream CVEs: by the catalog's rule the notice's CVEs
    are the 6 mapped ones; the full upstream list stays on the record."""
    n = by_id("USN-7800-1")
    assert len(n.cves) == 6 and len(n.upstream) == 106
    with_priority = [c for c in n.cves if c.priority]
    assert len(with_priority) == 6
    assert all(c.priority == "medium" and c.cvss for c in with_priority)
    assert n.priority == "medium"
    (a,) = n.affected
    assert (a.release, a.is_lts, a.is_pro, a.pro_variant) == ("24.04", True, True, "Realtime")
    assert (a.distro, a.codename) == ("realtime/noble", "noble")


def test_interim_release_and_pro_are_kept_apart():
    n = by_id("USN-8000-1")
    interim = next(a for a in n.affected if a.ecosystem == "Ubuntu:25.10")
    assert (interim.release, interim.is_lts, interim.is_pro, interim.codename) == ("25.10", False, False, "questing")
    pro = [a for a in n.affected if a.is_pro]
    assert {a.release for a in pro} == {"16.04", "18.04", "20.04"}
    assert {a.codename for a in pro} == {"xenial", "bionic", "focal"}
    assert all(a.distro.startswith("esm-") for a in pro)
    assert all(a.pro_variant == "" for a in n.affected)
    expat = by_id("USN-7000-1")
    assert {(a.release, a.is_pro) for a in expat.affected} == {
        ("20.04", False),
        ("24.04", False),
        ("14.04", True),
        ("16.04", True),
        ("18.04", True),
    }


def test_cvss_v4_and_unicode_details():
    n = by_id("USN-7050-1")
    assert "Benoit C\u00f4t\u00e9" in n.details
    cve = next(c for c in n.cves if c.id == "CVE-2024-8796")
    assert {v.type for v in cve.cvss} == {"CVSS_V3", "CVSS_V4"}
    assert any(v.vector.startswith("CVSS:4.0/") for v in cve.cvss)
    assert len(cve.cvss) == len(set(cve.cvss))  # the duplicated V3 entry is kept once


def test_ubuntu_cve_records():
    n = by_id("UBUNTU-CVE-2016-20013")
    assert (n.kind, n.cve_ids, n.priority, n.summary) == ("cve", ["CVE-2016-20013"], "negligible", "")
    assert all(a.fixed is None for a in n.affected)
    assert n.cves[0].cvss[0].vector.startswith("CVSS:3.1/")
    syslinux = next(a for a in n.affected if a.source_package == "syslinux" and a.release == "22.04")
    assert syslinux.versions and syslinux.codename == "jammy"
    m = by_id("UBUNTU-CVE-2021-3782")
    assert (m.priority, m.cve_ids) == ("medium", ["CVE-2021-3782"])
    assert m.related == ("USN-5614-1", "USN-5614-2")
    assert len(m.cves[0].cvss) == 1


def test_t64_renames_typos_and_microseconds_are_kept_verbatim():
    cups = by_id("USN-7041-1")
    noble = next(a for a in cups.affected if a.release == "24.04")
    assert "libcups2t64" in {b.binary_name for b in noble.binaries}
    assert by_id("USN-6650-1").summary == "inux-oem-6.1 vulnerability"
    assert by_id("USN-6100-1").published == datetime(2023, 5, 23, 20, 58, 18, 246770, tzinfo=UTC)
    trusty = by_id("USN-6850-1").affected[0]
    assert (trusty.distro, trusty.codename) == ("trusty/esm", "trusty")


@pytest.mark.parametrize(
    ("ecosystem", "expected"),
    [
        ("Ubuntu:22.04:LTS", ("22.04", True, False, "")),
        ("Ubuntu:25.10", ("25.10", False, False, "")),
        ("Ubuntu:Pro:16.04:LTS", ("16.04", True, True, "")),
        ("Ubuntu:Pro:Realtime:24.04:LTS", ("24.04", True, True, "Realtime")),
        ("Ubuntu:Pro:FIPS-updates:20.04:LTS", ("20.04", True, True, "FIPS-updates")),
        ("Debian:12", None),
        ("Ubuntu", None),
        ("Ubuntu:22.04:LTS:extra", None),
    ],
)
def test_parse_ecosystem(ecosystem, expected):
    assert parse_ecosystem(ecosystem) == expected


# -------------------------------------------------------------------------- malformed documents

INVALID_REASONS = {
    "truncated.json": "invalid JSON",
    "empty.json": "empty file",
    "not-an-object.json": "top level is a JSON array",
    "missing-id.json": "missing required field 'id'",
    "id-not-a-string.json": "id: expected string, got number",
    "unknown-id.json": "'DSA-5380-1' is not a USN-",
    "missing-modified.json": "missing required field 'modified'",
    "bad-timestamp.json": "published: not an RFC 3339",
    "affected-not-a-list.json": "affected: expected array, got object",
    "missing-affected.json": "missing required field 'affected'",
    "affected-without-package.json": "affected[1]: missing required field 'package'",
    "unknown-ecosystem.json": "affected[0].package.ecosystem: 'Debian:12' is not an Ubuntu ecosystem",
    "bad-fixed-version.json": "affected[0].ranges[0].events[1].fixed: bad version '2.3.2-7ubuntu3.2+esm1-': "
    "revision number is empty",
    "bad-binary-version.json": "affected[1].ecosystem_specific.binaries[0].binary_version: bad version "
    "':2.3.10-1ubuntu2.2+esm1': epoch in version is empty",
    "bad-listed-version.json": "affected[0].versions[0]: bad version '2.3.2 7ubuntu1'",
    "versions-not-a-list.json": "affected[0].versions: expected array, got string",
    "upstream-not-strings.json": "upstream[1]: expected string, got number",
}


def test_every_invalid_file_is_reported_with_path_and_reason():
    seen = {}
    for name, result in iter_notices(INVALID):
        assert isinstance(result, OsvFormatError), name
        assert result.path == name
        assert str(result).startswith(name + ": ")
        seen[Path(name).name] = result.reason
    assert set(seen) == set(INVALID_REASONS), "README.md is skipped, every .json is reported"
    for fn, reason in INVALID_REASONS.items():
        assert reason in seen[fn], (fn, seen[fn])


def test_bad_files_do_not_stop_the_good_ones(tmp_path):
    for p in list(INVALID.glob("*.json"))[:6] + FILES[:5]:
        shutil.copy(p, tmp_path / p.name)
    results = list(iter_notices(tmp_path))
    good = [r for _, r in results if not isinstance(r, Exception)]
    bad = [r for _, r in results if isinstance(r, Exception)]
    assert (len(good), len(bad)) == (5, 6)


def test_parse_notice_without_source_names_the_id():
    doc = raw(FILES[3])
    doc["affected"][0]["versions"] = 7
    with pytest.raises(OsvFormatError, match=rf"^{doc['id']}: affected\[0\]\.versions: expected array"):
        parse_notice(doc)
    with pytest.raises(OsvFormatError, match="top level is a JSON string"):
        parse_notice("USN-1-1")


# -------------------------------------------------------------------------- sources


def ids(source) -> list[str]:
    out = []
    for name, doc in iter_osv_documents(source):
        assert not isinstance(doc, Exception), (name, doc)
        out.append(doc["id"])
    return sorted(out)


ALL_IDS = sorted(p.stem for p in FILES)


def test_directory_tree_skips_readme_and_manifest():
    names = [name for name, _ in iter_osv_documents(CORPUS)]
    assert len(names) == 21
    assert all(n.endswith(".json") for n in names)
    assert ids(CORPUS) == ALL_IDS


def test_single_file():
    ((name, doc),) = list(iter_osv_documents(FILES[0]))
    assert name == str(FILES[0]) and doc["id"] == FILES[0].stem


@pytest.mark.parametrize("mode", ["w:xz", "w:gz", "w:bz2", "w"])
def test_tar_archives(tmp_path, mode):
    archive = tmp_path / ("osv.tar" + ("." + mode[2:] if ":" in mode else ""))
    with tarfile.open(archive, mode) as tf:
        tf.add(CORPUS, arcname="usn-osv")
    assert ids(archive) == ALL_IDS
    names = [n for n, _ in iter_osv_documents(archive)]
    assert f"{archive}:usn-osv/osv/usn/USN-6719-1.json" in names


def test_zip_archive_and_compressed_single_file(tmp_path):
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in FILES:
            zf.write(p, p.relative_to(CORPUS))
    assert ids(archive) == ALL_IDS
    single = tmp_path / "USN-6719-1.json.xz"
    single.write_bytes(lzma.compress((CORPUS / "osv/usn/USN-6719-1.json").read_bytes()))
    assert ids(single) == ["USN-6719-1"]


def test_truncated_archive_reports_the_archive_and_keeps_what_came_before(tmp_path):
    archive = tmp_path / "osv.tar.xz"
    with tarfile.open(archive, "w:xz") as tf:
        tf.add(CORPUS, arcname="usn-osv")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    results = list(iter_osv_documents(archive))
    good = [d for _, d in results if not isinstance(d, Exception)]
    errors = [(n, d) for n, d in results if isinstance(d, Exception)]
    assert 0 < len(good) < 21
    assert len(errors) == 1
    name, err = errors[0]
    assert name == str(archive) and "truncated or corrupt" in err.reason


def test_file_and_http_urls(tmp_path):
    archive = tmp_path / "osv.tar.xz"
    with tarfile.open(archive, "w:xz") as tf:
        tf.add(CORPUS / "osv", arcname="osv")
    assert ids(archive.as_uri()) == ALL_IDS
    assert ids(CORPUS.as_uri()) == ALL_IDS
    with serve_directory(tmp_path) as http:
        url = f"{http.url}/osv.tar.xz"
        names = [n for n, _ in iter_osv_documents(url)]
        assert ids(url) == ALL_IDS
        assert f"{url}:osv/cve/UBUNTU-CVE-2021-3782.json" in names
        with pytest.raises(OsvSourceError, match="HTTP 404"):
            list(iter_osv_documents(f"{http.url}/missing.tar.xz"))
        http.lie_length["/osv.tar.xz"] = archive.stat().st_size
        with pytest.raises(OsvSourceError, match=r"truncated|failed"):
            list(iter_osv_documents(url))


def test_unreadable_sources_raise(tmp_path):
    with pytest.raises(OsvSourceError, match="cannot open"):
        list(iter_osv_documents(tmp_path / "nope"))
    with pytest.raises(OsvSourceError, match="download failed"):
        list(iter_osv_documents(closed_port_url() + "/osv.tar.xz"))
    with pytest.raises(OsvSourceError, match="unsupported URL scheme"):
        list(iter_osv_documents("ftp://example.invalid/osv.tar.xz"))
