"""Fetching and verifying APT archives, served for real over loopback HTTP, checked by the real gpgv.

Debian's own signed InRelease files and Packages (tests/data, see PROVENANCE.md) are verified against
Debian's keyring with "now" pinned inside their validity window. A throwaway key made with the real
gpg signs a second archive to cover Release + Release.gpg, by-hash and compressed variants.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from uus.catalog.sources.apt import (
    ArchiveError,
    ChecksumMismatch,
    DownloadError,
    ExpiredRelease,
    ReleaseNotYetValid,
    SignatureError,
    choose_index,
    fetch_index,
    fetch_release,
    index_variants,
    iter_packages,
    pocket_of,
)
from uus.catalog.tests.loopback import closed_port_url, serve_directory
from uus.catalog.tests.signed_archive import build_archive

DATA = Path(__file__).parent / "data"
DEBIAN_KEYRING = DATA / "keyrings" / "debian-archive-keyring.gpg"
SHARED = Path(__file__).resolve().parents[5] / "shared" / "data"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # inside every fixture's validity window
BOOKWORM_KEY = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"  # Debian Archive Automatic Signing Key (12/bookworm)
TRIXIE_KEY = "04B54C3CDCA79751B16BC6B5225629DF75B188BD"

pytestmark = pytest.mark.skipif(shutil.which("gpgv") is None, reason="gpgv is not installed")


def debian_tree(root: Path, suite: str, fixture: str) -> Path:
    """ROOT/debian/dists/SUITE/{InRelease, main/binary-amd64/Packages} from a fixture folder."""
    dists = root / "debian" / "dists" / suite
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    shutil.copy(DATA / fixture / "InRelease", dists / "InRelease")
    shutil.copy(DATA / fixture / "Packages", dists / "main" / "binary-amd64" / "Packages")
    return dists


@pytest.fixture
def bookworm_updates(tmp_path):
    dists = debian_tree(tmp_path, "bookworm-updates", "debian-bookworm-updates")
    with serve_directory(tmp_path) as http:
        http.dists = dists
        yield http


# ----------------------------------------------------------------------------- real Debian data


def test_real_inrelease_verifies_against_debians_keyring(bookworm_updates):
    rel = fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    assert set(rel.signed_by) == {BOOKWORM_KEY, TRIXIE_KEY}
    assert (rel.origin, rel.suite_name, rel.codename) == ("Debian", "oldstable-updates", "bookworm-updates")
    assert rel.date == datetime(2026, 11, 23, 2, 9, 33, tzinfo=UTC)
    assert rel.valid_until is None
    assert rel.acquire_by_hash is True
    assert "amd64" in rel.architectures and "main" in rel.components
    entry = rel.entries["main/binary-amd64/Packages"]
    assert (entry.size, entry.sha256[:8]) == (32757, "80a1f6ee")
    assert rel.url.endswith("/dists/bookworm-updates/InRelease")
    assert rel.pocket == "updates" and rel.warnings == []
    assert "PGP" not in rel.text and rel.text.startswith("Origin: Debian")
    assert bookworm_updates.requests == ["/debian/dists/bookworm-updates/InRelease"]


def test_choose_index_prefers_by_hash_then_xz(bookworm_updates):
    rel = fetch_release(f"{bookworm_updates.url}/debian/", "bookworm-updates/", DEBIAN_KEYRING, now=NOW)
    variants = index_variants(rel, "main", "amd64")
    assert [(v.compression, v.by_hash) for v in variants] == [("xz", True), ("xz", False), ("", True), ("", False)]
    assert choose_index(rel, "main", "amd64") == variants[0]
    assert variants[0].url.endswith(
        "/dists/bookworm-updates/main/binary-amd64/by-hash/SHA256/"
        "87e7e94047fb7fb6f4ceecc7022d4bee55b66031cc2a7666d3196f3e0aabb846"
    )
    with pytest.raises(ArchiveError, match="lists no Packages index for main/binary-sparc"):
        choose_index(rel, "main", "sparc")


def test_fetch_index_falls_back_to_what_the_server_has_and_parses_it(bookworm_updates):
    rel = fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    with fetch_index(rel, "main", "amd64") as index:
        assert index.variant.path == "main/binary-amd64/Packages" and not index.variant.by_hash
        assert (index.size, index.sha256) == (32757, rel.entries["main/binary-amd64/Packages"].sha256)
        with index.open() as f:
            packages = list(iter_packages(f))
        path = index.path
    assert not path.exists(), "the temporary index is removed on exit"
    tried = [r.rsplit("/", 1)[-1] for r in bookworm_updates.requests[1:]]
    assert tried == [
        "87e7e94047fb7fb6f4ceecc7022d4bee55b66031cc2a7666d3196f3e0aabb846",
        "Packages.xz",
        "80a1f6ee524222c49f230fc5700d00f946d0a47eb5258180106dd03df126e16a",
        "Packages",
    ]
    assert len(packages) == 38
    ssh = next(p for p in packages if p["package"] == "openssh-client")
    assert ssh == {
        "package": "openssh-client",
        "version": "1:9.2p1-2+deb12u7",
        "architecture": "amd64",
        "source": "openssh",
        "source_version": "1:9.2p1-2+deb12u7",
        "section": "net",
        "priority": "standard",
        "size": ssh["size"],
        "sha256": ssh["sha256"],
        "filename": ssh["filename"],
        "description": "secure shell (SSH) client, for secure access to remote machines",
    }
    assert ssh["filename"].startswith("pool/main/o/openssh/") and len(ssh["sha256"]) == 64 and ssh["size"] > 0
    samba = [p for p in packages if p["source"] == "samba" and p["version"] != p["source_version"]]
    assert samba and all(p["source_version"] == "2:4.17.12+dfsg-0+deb12u2" for p in samba)


def test_fetch_index_to_a_chosen_destination(bookworm_updates, tmp_path):
    rel = fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    dest = tmp_path / "kept-Packages"
    with fetch_index(rel, "main", "amd64", dest=dest):
        pass
    assert dest.read_bytes() == (DATA / "debian-bookworm-updates" / "Packages").read_bytes()


def test_tampered_inrelease_is_refused(bookworm_updates):
    inrelease = bookworm_updates.dists / "InRelease"
    text = inrelease.read_text()
    inrelease.write_text(text.replace("Date: Mon, 23 Nov 2026 02:09:33 UTC", "Date: Sat, 01 Jan 2000 00:00:00 UTC"))
    with pytest.raises(SignatureError, match="BAD signature"):
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    # an index line changed to point at another Packages file
    inrelease.write_text(text.replace("80a1f6ee524222c49f230fc5700d00f946d0a47eb5258180106dd03df126e16a", "0" * 64))
    with pytest.raises(SignatureError, match="BAD signature"):
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda t: "Origin: Evil\nSuite: evil\n\n" + t, "not a clearsigned file"),
        (lambda t: t + "\nSHA256:\n 00 1 main/binary-amd64/Packages\n", "unsigned text after its signature"),
        (lambda t: t + "\n" + t, "more than one signed message"),
        (lambda t: t.split("-----BEGIN PGP SIGNATURE-----")[0].split("\n\n", 1)[1], "not a clearsigned file"),
    ],
    ids=["text-before", "text-after", "two-messages", "signature-stripped"],
)
def test_text_outside_the_signature_is_refused(bookworm_updates, edit, reason):
    inrelease = bookworm_updates.dists / "InRelease"
    inrelease.write_text(edit(inrelease.read_text()))
    with pytest.raises(SignatureError, match=reason):
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)


def test_unknown_signing_key_is_refused(bookworm_updates, archive_key):
    with pytest.raises(SignatureError, match="not in the keyring") as exc:
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", archive_key.keyring, now=NOW)
    assert "6ED0E7B82643E131" in str(exc.value) or "78DBA3BC47EF2265" in str(exc.value)


def test_keyring_that_cannot_be_read(bookworm_updates, tmp_path):
    with pytest.raises(ArchiveError, match="cannot be read"):
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", tmp_path / "none.gpg", now=NOW)


def test_tampered_packages_fails_the_checksum(bookworm_updates):
    packages = bookworm_updates.dists / "main" / "binary-amd64" / "Packages"
    rel = fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    data = packages.read_bytes()
    packages.write_bytes(data.replace(b"Version: 1:9.2p1-2+deb12u7", b"Version: 1:9.9p1-2+deb12u7"))
    with pytest.raises(ChecksumMismatch, match=r"SHA256 is .* the signed Release says 80a1f6ee"):
        fetch_index(rel, "main", "amd64")
    packages.write_bytes(data[:20000])
    with pytest.raises(ChecksumMismatch, match="size is 20000 bytes"):
        fetch_index(rel, "main", "amd64")
    packages.write_bytes(data + b"\nPackage: extra\n")
    with pytest.raises(ChecksumMismatch, match="size"):
        fetch_index(rel, "main", "amd64")


def test_cut_transfer_and_server_errors(bookworm_updates):
    rel = fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    plain = "/debian/dists/bookworm-updates/main/binary-amd64/Packages"
    bookworm_updates.lie_length[plain] = 32757
    with pytest.raises(DownloadError, match="cut short after 32657 of 32757 bytes"):
        fetch_index(rel, "main", "amd64")
    del bookworm_updates.lie_length[plain]
    bookworm_updates.fail[plain] = 500
    with pytest.raises(DownloadError, match="HTTP 500") as exc:
        fetch_index(rel, "main", "amd64")
    assert exc.value.http_status == 500
    bookworm_updates.lie_length["/debian/dists/bookworm-updates/InRelease"] = 55403
    with pytest.raises(DownloadError, match="cut short"):
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)


def test_every_variant_missing(bookworm_updates):
    rel = fetch_release(f"{bookworm_updates.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    (bookworm_updates.dists / "main" / "binary-amd64" / "Packages").unlink()
    with pytest.raises(DownloadError, match="none of the 4 listed variants"):
        fetch_index(rel, "main", "amd64")


def test_server_down_and_wrong_suite(bookworm_updates):
    with pytest.raises(DownloadError, match="connection refused"):
        fetch_release(f"{closed_port_url()}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
    with pytest.raises(DownloadError, match="neither InRelease nor Release exists"):
        fetch_release(f"{bookworm_updates.url}/debian", "bookworm-nope", DEBIAN_KEYRING, now=NOW)


def test_valid_until_is_enforced(tmp_path):
    debian_tree(tmp_path, "trixie-updates", "debian-trixie-updates")
    with serve_directory(tmp_path) as http:
        base = f"{http.url}/debian"
        rel = fetch_release(base, "trixie-updates", DEBIAN_KEYRING, now=NOW)
        assert rel.valid_until == datetime(2026, 11, 30, 2, 9, 33, tzinfo=UTC)
        assert set(rel.signed_by) == {BOOKWORM_KEY, TRIXIE_KEY}
        with fetch_index(rel, "main", "amd64") as index, index.open() as f:
            assert [p["package"] for p in iter_packages(f)] == ["libdatetime-timezone-perl", "tzdata", "tzdata-legacy"]
        with pytest.raises(ExpiredRelease, match="expired on 2026-11-30 02:09 UTC"):
            fetch_release(base, "trixie-updates", DEBIAN_KEYRING, now=datetime(2026, 12, 1, tzinfo=UTC))
        with pytest.raises(ReleaseNotYetValid, match="in the future"):
            fetch_release(base, "trixie-updates", DEBIAN_KEYRING, now=datetime(2026, 11, 1, tzinfo=UTC))


# ----------------------------------------------------------------------------- our own signed archive


def test_release_with_detached_signature_and_by_hash_xz(tmp_path, archive_key):
    dists = build_archive(tmp_path, archive_key, by_hash=True, inrelease=False)
    with serve_directory(tmp_path) as http:
        rel = fetch_release(f"{http.url}/repo", "stable", archive_key.keyring, now=NOW)
        assert rel.signed_by == [archive_key.fingerprint]
        assert rel.url.endswith("/dists/stable/Release")
        assert http.requests[:3] == [
            "/repo/dists/stable/InRelease",
            "/repo/dists/stable/Release",
            "/repo/dists/stable/Release.gpg",
        ]
        with fetch_index(rel, "main", "amd64") as index, index.open() as f:
            assert (index.variant.compression, index.variant.by_hash) == ("xz", True)
            assert index.sha256 == hashlib.sha256((dists / "main/binary-amd64/Packages").read_bytes()).hexdigest()
            assert len(list(iter_packages(f))) == 38
        # the same with an ASCII-armored keyring
        assert fetch_release(f"{http.url}/repo", "stable", archive_key.armored, now=NOW).signed_by == rel.signed_by
        # a by-hash file gone (mirror cleanup) falls back to the named file
        shutil.rmtree(dists / "main/binary-amd64/by-hash")
        with fetch_index(rel, "main", "amd64") as index:
            assert (index.variant.compression, index.variant.by_hash) == ("xz", False)
        # an edited Release no longer matches its detached signature
        release = dists / "Release"
        release.write_text(release.read_text().replace("Origin: UUS test", "Origin: UUS tost"))
        with pytest.raises(SignatureError, match="BAD signature"):
            fetch_release(f"{http.url}/repo", "stable", archive_key.keyring, now=NOW)


def test_gzip_variant_and_clearsigned_release(tmp_path, archive_key):
    dists = build_archive(
        tmp_path, archive_key, by_hash=False, inrelease=True, valid_until="Wed, 25 Nov 2026 00:00:00 UTC"
    )
    (dists / "main/binary-amd64/Packages.xz").unlink()
    with serve_directory(tmp_path) as http:
        rel = fetch_release(f"{http.url}/repo", "stable", [DEBIAN_KEYRING, archive_key.keyring], now=NOW)
        with fetch_index(rel, "main", "amd64") as index:
            assert index.variant.compression == "gz"
            assert index.path.read_bytes() == (dists / "main/binary-amd64/Packages").read_bytes()
        with pytest.raises(ExpiredRelease):
            fetch_release(f"{http.url}/repo", "stable", archive_key.keyring, now=datetime(2026, 11, 26, tzinfo=UTC))


def test_unsigned_release_is_refused(tmp_path, archive_key):
    dists = build_archive(tmp_path, archive_key, by_hash=False, inrelease=False)
    (dists / "Release.gpg").unlink()
    with serve_directory(tmp_path) as http, pytest.raises(SignatureError, match="is not signed"):
        fetch_release(f"{http.url}/repo", "stable", archive_key.keyring, now=NOW)


def test_file_urls_work_too(tmp_path, archive_key):
    build_archive(tmp_path, archive_key, by_hash=True, inrelease=True)
    rel = fetch_release((tmp_path / "repo").as_uri(), "stable", archive_key.keyring, now=NOW)
    with fetch_index(rel, "main", "amd64") as index:
        assert index.variant.by_hash and index.size == 32757


# ----------------------------------------------------------------------------- parsing and helpers

SL_STANZA = b"""Package: sl
Source: sl (5.02-1)
Version: 5.02-1+b1
Installed-Size: 60
Maintainer: Markus Frosch <lazyfrosch@debian.org>
Architecture: amd64
Depends: libc6 (>= 2.2.5), libncurses6 (>= 6), libtinfo6 (>= 6)
Description: Correct you if you type `sl' by mistake
Homepage: https://github.com/mtoyoda/sl
Tag: game::toys, interface::text-mode, role::program, uitoolkit::ncurses,
 use::entertaining
Section: games
Priority: optional
Filename: pool/main/s/sl/sl_5.02-1+b1_amd64.deb
Size: 13172
SHA256: 47b95fd2c680eb8d8adff862a38b590318c76cd8d155cb3ac1049019732de2c0
"""


def test_iter_packages_binnmu_source_version():
    (sl,) = iter_packages(SL_STANZA.splitlines(keepends=True))
    assert (sl["package"], sl["version"], sl["source"], sl["source_version"]) == ("sl", "5.02-1+b1", "sl", "5.02-1")
    assert (sl["size"], sl["section"], sl["priority"]) == (13172, "games", "optional")


@pytest.mark.parametrize(
    ("stanza", "reason"),
    [
        (b"Package: x\nArchitecture: all\n", "missing Version"),
        (b"Package: x\nVersion: 1.0-\nArchitecture: all\n", "revision number is empty"),
        (b"Package: x\nVersion: 1.0\nArchitecture: all\nSource: a b c\n", "bad Source field"),
    ],
)
def test_iter_packages_refuses_broken_stanzas(stanza, reason):
    from uus.catalog.sources.apt import IndexFormatError

    with pytest.raises(IndexFormatError, match=reason):
        list(iter_packages(stanza.splitlines(keepends=True)))


@pytest.mark.parametrize(
    ("suite", "pocket"),
    [
        ("bookworm", "release"),
        ("jammy", "release"),
        ("stable", "release"),
        ("bookworm-security", "security"),
        ("jammy-security", "security"),
        ("buster/updates", "security"),
        ("bookworm-updates", "updates"),
        ("jammy-updates", "updates"),
        ("stable-updates", "updates"),
        ("jammy-backports", "backports"),
        ("bookworm-backports-sloppy", "backports"),
        ("jammy-proposed", "proposed"),
        ("bookworm-proposed-updates", "proposed"),
    ],
)
def test_pocket_of(suite, pocket):
    assert pocket_of(suite) == pocket


@pytest.mark.skipif(not (SHARED / "debian-packages").is_dir(), reason="../shared/data is not present")
def test_full_bookworm_index_syncs_end_to_end(tmp_path, record_property, capsys):
    """The real 63,440-package bookworm main index, signed InRelease and all, over loopback HTTP."""
    dists = tmp_path / "debian" / "dists" / "bookworm"
    (dists / "main" / "binary-amd64").mkdir(parents=True)
    shutil.copy(SHARED / "debian-packages/bookworm/bookworm_InRelease", dists / "InRelease")
    with (
        lzma.open(SHARED / "debian-packages/bookworm/bookworm_main_binary-amd64_Packages.xz") as src,
        open(dists / "main/binary-amd64/Packages", "wb") as out,
    ):
        shutil.copyfileobj(src, out, 1 << 20)
    with serve_directory(tmp_path) as http:
        t0 = time.perf_counter()
        rel = fetch_release(f"{http.url}/debian", "bookworm", DEBIAN_KEYRING, now=NOW)
        with fetch_index(rel, "main", "amd64") as index, index.open() as f:
            t1 = time.perf_counter()
            packages = list(iter_packages(f))
            t2 = time.perf_counter()
    assert len(packages) == 63440
    hello = next(p for p in packages if p["package"] == "hello")
    assert (hello["version"], hello["source"]) == ("2.10-3", "hello")
    record_property("bookworm_fetch_verify_seconds", round(t1 - t0, 2))
    record_property("bookworm_parse_seconds", round(t2 - t1, 2))
    with capsys.disabled():
        print(f"\n[bookworm main amd64] fetch+verify {t1 - t0:.2f}s, parse 63,440 packages {t2 - t1:.2f}s")


# ----------------------------------------------------------------------------- as apt does it


def apt_get_update(url: str, keyring: Path, work: Path, suite: str = "stable") -> list[str]:
    """Run the real `apt-get update` against URL/repo with its own state directories; returns its
    stdout+stderr. The host's apt state is neither read nor changed (its configuration is, as apt
    reads it before these options: the options that matter here are set explicitly)."""
    for sub in ("lists/partial", "cache/archives/partial", "etc"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    sources = work / "etc" / "sources.list"
    sources.write_text(f"deb [signed-by={keyring}] {url}/repo {suite} main\n")
    opts = {
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": "/dev/null",
        "Dir::State::Lists": work / "lists",
        "Dir::Cache": work / "cache",
        "Dir::State::Status": "/dev/null",
        "Debug::NoLocking": "1",
        "APT::Sandbox::User": "root",
        "APT::Architecture": "amd64",
        "APT::Architectures": "amd64",
        "Acquire::Languages": "none",
        "Acquire::GzipIndexes": "false",  # keep the fetched index as plain text, to compare it
    }
    cmd = ["apt-get", "update", *[a for k, v in opts.items() for a in ("-o", f"{k}={v}")]]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def _index_requests(requests: list[str]) -> list[str]:
    return [r.split("/dists/stable/", 1)[1] for r in requests if "/binary-amd64/" in r]


@pytest.mark.system
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed")
@pytest.mark.parametrize(
    ("compressions", "by_hash", "remove"),
    [
        (("", "xz", "gz", "bz2"), True, []),
        (("", "xz", "gz", "bz2"), False, []),
        (("", "gz", "bz2"), False, []),
        (("", "gz"), False, []),
        (("",), True, []),
        (("", "xz", "gz"), True, ["by-hash"]),  # a mirror that dropped its by-hash files
        (("", "xz", "gz"), False, ["Packages.xz"]),  # a mirror missing a listed variant
        (("", "xz", "gz"), True, ["by-hash", "Packages.xz"]),
    ],
    ids=["all-by-hash", "all", "bz2-gz", "gz", "plain-by-hash", "by-hash-gone", "xz-gone", "by-hash-and-xz-gone"],
)
def test_index_variants_are_tried_in_the_order_real_apt_tries_them(
    tmp_path, archive_key, compressions, by_hash, remove
):
    """The Release lists several variants; the real apt-get fetches one (falling back on 404s), and
    UUS must ask for exactly the same files in the same order, and end with the same index."""
    dists = build_archive(tmp_path, archive_key, by_hash=by_hash, inrelease=True, compressions=compressions)
    for name in remove:
        target = dists / "main/binary-amd64" / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with serve_directory(tmp_path) as http:
        apt_get_update(http.url, archive_key.keyring, tmp_path / "apt")
        apt_asked = _index_requests(http.requests)
        http.requests.clear()
        rel = fetch_release(f"{http.url}/repo", "stable", archive_key.keyring, now=NOW)
        with fetch_index(rel, "main", "amd64") as index:
            uus_asked = _index_requests(http.requests)
            uus_index = index.path.read_bytes()
    assert apt_asked and uus_asked == apt_asked
    (apt_list,) = (tmp_path / "apt" / "lists").glob("*_binary-amd64_Packages*")
    apt_index = apt_list.read_bytes()
    assert uus_index == apt_index == (dists / "main/binary-amd64/Packages").read_bytes()


# ----------------------------------------------------------------------------- https


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A throwaway CA and a certificate for 127.0.0.1 signed by it, made with the openssl CLI."""
    from uus.testing.slapd import make_ca, make_server_certificate

    d = tmp_path_factory.mktemp("tls")
    ca_cert, ca_key = make_ca(d, "ca", "UUS test mirror CA")
    cert, key = make_server_certificate(d, "mirror", ca_cert, ca_key, ["IP:127.0.0.1"], common_name="mirror")
    other_ca, _ = make_ca(d, "other-ca", "Unrelated CA")
    return {"ca": ca_cert, "cert": cert, "key": key, "other_ca": other_ca}


def test_https_mirror_with_a_trusted_ca(bookworm_updates, tls_files, monkeypatch, tmp_path):
    root = bookworm_updates.root
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))  # the trust store OpenSSL reads
    with serve_directory(root, tls=(tls_files["cert"], tls_files["key"])) as https:
        assert https.url.startswith("https://127.0.0.1:")
        rel = fetch_release(f"{https.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
        assert rel.url.startswith("https://") and set(rel.signed_by) == {BOOKWORM_KEY, TRIXIE_KEY}
        with fetch_index(rel, "main", "amd64") as index, index.open() as f:
            assert len(list(iter_packages(f))) == 38
        assert https.requests[0] == "/debian/dists/bookworm-updates/InRelease"


def test_https_mirror_with_an_untrusted_certificate_is_refused(bookworm_updates, tls_files, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["other_ca"]))
    with serve_directory(bookworm_updates.root, tls=(tls_files["cert"], tls_files["key"])) as https:
        with pytest.raises(DownloadError, match="TLS certificate is not trusted") as exc:
            fetch_release(f"{https.url}/debian", "bookworm-updates", DEBIAN_KEYRING, now=NOW)
        assert "trust store" in str(exc.value) and https.requests == []
