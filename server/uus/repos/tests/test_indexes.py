"""Packages/Release writing: compared with apt-ftparchive's own output, and at Debian's scale."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from uus.repos.debfile import inspect_deb, valid_architecture, valid_package_name, valid_version
from uus.repos.indexes import (
    InvalidIndexData,
    add_by_hash,
    format_release_date,
    format_stanza,
    hash_file,
    write_packages,
    write_release,
)
from uus.repos.pool import pool_path_for

from .debs import ALL_REAL

SHARED = Path(__file__).resolve().parents[4].parent / "shared" / "data"  # ../shared from the repo
BOOKWORM = SHARED / "debian-packages" / "bookworm" / "bookworm_main_binary-amd64_Packages.xz"
LIMIT = 10 * 1024 * 1024


def _paragraphs(text: str) -> list[str]:
    return [p + "\n" for p in text.strip("\n").split("\n\n")]


def _stanza_dict(paragraph: str) -> dict[str, str]:
    fields, last = {}, None
    for line in paragraph.rstrip("\n").split("\n"):
        if line[:1] in (" ", "\t"):
            fields[last] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
            last = key
    return fields


def test_stanzas_match_apt_ftparchive_field_for_field(tmp_path):
    """Lay the real packages out at their pool paths and let apt-ftparchive index them too."""
    ours = {}
    for deb in ALL_REAL:
        info = inspect_deb(deb, LIMIT)
        filename = pool_path_for(info.package, info.version, info.architecture, info.source)
        target = tmp_path / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(deb, target)
        ours[info.package] = format_stanza(info.index_fields(filename))
    theirs_text = subprocess.run(
        ["apt-ftparchive", "packages", "pool"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    theirs = {}
    for paragraph in _paragraphs(theirs_text):
        # we do not publish SHA512 (the Release lists MD5Sum/SHA1/SHA256); otherwise identical
        lines = [ln for ln in paragraph.split("\n") if not ln.startswith("SHA512:")]
        theirs[_stanza_dict(paragraph)["Package"]] = "\n".join(lines) + "\n"
    assert set(theirs) == set(ours)
    for name in ours:
        assert ours[name] == theirs[name], name


def test_format_stanza_refuses_injection():
    base = {"Package": "a1", "Version": "1", "Architecture": "all"}
    with pytest.raises(InvalidIndexData):
        format_stanza({**base, "Description": "x\nPackage: evil"})
    with pytest.raises(InvalidIndexData):
        format_stanza({**base, "Description": "x\n\nPackage: evil"})
    with pytest.raises(InvalidIndexData):
        format_stanza({**base, "Bad Name": "x"})
    assert format_stanza({**base, "Empty": ""}).count("Empty") == 0


def test_packages_files_release_and_by_hash(tmp_path):
    infos = [inspect_deb(d, LIMIT) for d in ALL_REAL]
    stanzas = [i.index_fields(pool_path_for(i.package, i.version, i.architecture, i.source)) for i in infos]
    suite = tmp_path / "dists" / "uus-local"
    out = suite / "main" / "binary-amd64"
    hashes = write_packages(out, stanzas)
    plain = (out / "Packages").read_bytes()
    assert gzip.decompress((out / "Packages.gz").read_bytes()) == plain
    assert lzma.decompress((out / "Packages.xz").read_bytes()) == plain
    assert len(_paragraphs(plain.decode())) == len(infos)
    for name, fh in hashes.items():
        assert fh == hash_file(out / name)
    links = add_by_hash(out, hashes)
    for name, fh in hashes.items():
        by_hash = out / "by-hash" / "SHA256" / fh.sha256
        assert by_hash in links and by_hash.read_bytes() == (out / name).read_bytes()

    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    files = {f"main/binary-amd64/{n}": fh for n, fh in hashes.items()}
    write_release(
        suite / "Release",
        suite="uus-local",
        codename="uus-local",
        architectures=["amd64"],
        components=["main"],
        files=files,
        date=now,
        valid_until=now + timedelta(days=7),
    )
    release = (suite / "Release").read_text()
    assert "Date: Wed, 25 Nov 2026 10:00:00 UTC\n" in release
    assert "Valid-Until: Wed, 02 Dec 2026 10:00:00 UTC\n" in release
    assert "Acquire-By-Hash: yes\n" in release
    for field in ("MD5Sum", "SHA1", "SHA256"):
        assert f"\n{field}:\n" in release
    for rel, fh in files.items():
        for digest in (fh.md5, fh.sha1, fh.sha256):
            assert f" {digest} {fh.size:>16} {rel}\n" in release
            # and it is the real hash of the file relative to dists/SUITE/
        assert hashlib.sha256((suite / rel).read_bytes()).hexdigest() == fh.sha256


def test_release_date_is_locale_free():
    assert format_release_date(datetime(2026, 1, 4, 23, 5, 9, tzinfo=UTC)) == ("Sun, 04 Jan 2026 23:05:09 UTC")


def test_unchanged_packages_reuse_compressed_files(tmp_path):
    info = inspect_deb(ALL_REAL[0], LIMIT)
    stanza = info.index_fields("pool/main/c/cowsay/cowsay_3.03+dfsg2-8_all.deb")
    first = write_packages(tmp_path / "a", [stanza])
    second = write_packages(tmp_path / "b", [stanza], previous_dir=tmp_path / "a")
    assert first == second
    assert (tmp_path / "a" / "Packages.xz").stat().st_ino == (tmp_path / "b" / "Packages.xz").stat().st_ino


@pytest.mark.skipif(not BOOKWORM.exists(), reason="shared Debian data not present")
def test_debian_bookworm_main_63440_stanzas(tmp_path, capsys):
    """Debian 12 main, amd64: every stanza round-trips, and the time is printed (not asserted)."""
    text = lzma.open(BOOKWORM, "rt", encoding="utf-8").read()
    stanzas = [_stanza_dict(p) for p in text.split("\n\n") if p.strip()]
    assert len(stanzas) == 63440
    # our validators accept every name, version and architecture of a real Debian release
    for st in stanzas:
        assert valid_package_name(st["Package"]), st["Package"]
        assert valid_version(st["Version"]), st["Version"]
        assert valid_architecture(st["Architecture"]), st["Architecture"]
        source = st.get("Source", "").split(" ")
        if len(source) == 2:
            assert valid_version(source[1].strip("()")), st["Source"]
    start = time.perf_counter()
    hashes = write_packages(tmp_path, stanzas)
    elapsed = time.perf_counter() - start
    written = (tmp_path / "Packages").read_text(encoding="utf-8")
    back = [_stanza_dict(p) for p in written.split("\n\n") if p.strip()]
    assert back == stanzas  # same fields, same values (only their order may change)
    assert lzma.decompress((tmp_path / "Packages.xz").read_bytes()) == written.encode()
    with capsys.disabled():
        print(
            f"\n[index speed] {len(stanzas)} stanzas -> Packages {hashes['Packages'].size} B, "
            f".gz {hashes['Packages.gz'].size} B, .xz {hashes['Packages.xz'].size} B "
            f"in {elapsed:.2f} s"
        )
