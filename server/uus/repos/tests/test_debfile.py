"""inspect_deb against real packages, and a corpus of broken ones each refused with its reason."""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from uus.repos.debfile import InvalidPackage, inspect_deb, parse_control, valid_version
from uus.repos.pool import ingest_deb, store_file

from .debs import (
    ALL_REAL,
    COWSAY,
    FORTUNE,
    HELLO,
    MOD_MD,
    SL,
    SMALL_CONTROL,
    ar_archive,
    ar_members,
    compress,
    dpkg_build,
    hello_control,
    replace_field,
    tar_bytes,
    with_control,
)

LIMIT = 10 * 1024 * 1024


# --------------------------------------------------------------------------- good packages


def test_real_packages_are_described_like_dpkg_does():
    hello = inspect_deb(HELLO, LIMIT)
    assert (hello.package, hello.version, hello.architecture) == ("hello", "2.10-3", "amd64")
    assert (hello.source, hello.source_version) == ("hello", "2.10-3")
    assert hello.maintainer == "Santiago Vila <sanvila@debian.org>"
    assert hello.description == "example package based on GNU hello"
    assert (hello.section, hello.priority, hello.installed_size) == ("devel", "optional", 277)
    assert hello.depends == "libc6 (>= 2.34)"
    assert hello.control.startswith("Package: hello\nVersion: 2.10-3\n")
    assert hello.control.endswith("(which is itself an example for the GNU Project).\n")
    data = HELLO.read_bytes()
    assert hello.size == len(data) == 53080
    assert hello.sha256 == hashlib.sha256(data).hexdigest()
    assert hello.md5 == hashlib.md5(data).hexdigest()
    assert hello.sha1 == hashlib.sha1(data).hexdigest()
    assert (hello.control_member, hello.data_member) == ("control.tar.xz", "data.tar.xz")


def test_binnmu_epoch_tilde_and_arch_all():
    sl = inspect_deb(SL, LIMIT)
    assert (sl.version, sl.source, sl.source_version) == ("5.02-1+b1", "sl", "5.02-1")
    fortune = inspect_deb(FORTUNE, LIMIT)
    assert fortune.version == "1:1.99.1-7.3"
    md = inspect_deb(MOD_MD, LIMIT)
    assert (md.version, md.source, md.source_version) == (
        "2.4.68-1~deb12u1",
        "apache2",
        "2.4.68-1~deb12u1",
    )
    assert inspect_deb(COWSAY, LIMIT).architecture == "all"


def test_all_real_packages_match_dpkg_deb_fields():
    import subprocess

    for deb in ALL_REAL:
        info = inspect_deb(deb, LIMIT)
        out = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out == (f"Package: {info.package}\nVersion: {info.version}\nArchitecture: {info.architecture}\n")


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd", "none"])
def test_packages_built_by_dpkg_deb_in_every_compression(tmp_path, compression):
    deb = dpkg_build(
        tmp_path,
        control=SMALL_CONTROL,
        files={"usr/share/doc/uus-demo/README": b"hello\n" * 100},
        compression=compression,
    )
    info = inspect_deb(deb, LIMIT)
    assert (info.package, info.version, info.architecture) == ("uus-demo", "1.0-1", "all")
    suffix = {"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}[compression]
    assert info.data_member == "data.tar" + suffix


def test_underscore_members_are_skipped_like_dpkg(tmp_path):
    members = ar_members(HELLO.read_bytes())
    deb = tmp_path / "signed.deb"
    deb.write_bytes(ar_archive([*members, ("_gpgorigin", b"-----BEGIN PGP SIGNATURE-----\n")]))
    assert inspect_deb(deb, LIMIT).package == "hello"


def test_control_with_gzip_compression(tmp_path):
    deb = tmp_path / "gz.deb"
    deb.write_bytes(with_control(hello_control(), kind="gz"))
    assert inspect_deb(deb, LIMIT).control_member == "control.tar.gz"


# --------------------------------------------------------------------------- the bad corpus


def _hello_offsets():
    """(name, data offset, size) of hello's ar members."""
    data = HELLO.read_bytes()
    out, pos = [], 8
    while pos < len(data):
        size = int(data[pos + 48 : pos + 58])
        out.append((data[pos : pos + 16].decode().strip().rstrip("/"), pos + 60, size))
        pos += 60 + size + (size & 1)
    return out


def _truncations():
    data = HELLO.read_bytes()
    (_, bin_at, _), (_, ctl_at, ctl_size), (_, dat_at, dat_size) = _hello_offsets()
    return [
        ("4 bytes", data[:4], "truncated: the file ends inside the ar magic"),
        ("magic only", data[:8], "truncated: the ar archive has no members"),
        ("in the first header", data[:38], "the file ends inside the header of ar member #1"),
        ("in debian-binary", data[: bin_at + 2], "truncated: debian-binary ends early"),
        ("after debian-binary", data[: bin_at + 4], "the file ends after debian-binary"),
        ("in control header", data[: ctl_at - 20], "inside the header of ar member #2"),
        (
            "in control.tar.xz",
            data[: ctl_at + ctl_size // 2],
            "truncated: control.tar.xz ends early",
        ),
        ("after control", data[: ctl_at + ctl_size], "the file ends after control.tar.xz"),
        ("in data.tar.xz", data[: dat_at + dat_size // 2], "truncated: data.tar.xz ends early"),
        ("last 2 bytes", data[:-2], "truncated: data.tar.xz ends early"),
    ]


def _bad_corpus():
    hello = HELLO.read_bytes()
    members = ar_members(hello)
    binary, control, data = members
    ctl = hello_control()
    cases = [
        ("empty file", b"", "not a Debian package: the file is empty"),
        ("plain text", b"Package: hello\n", "not a Debian package: the file is not an ar archive"),
        ("gzip", gzip.compress(hello), "not a Debian package: the file is not an ar archive"),
        ("elf", b"\x7fELF" + b"\0" * 100, "not a Debian package: the file is not an ar archive"),
        *_truncations(),
        (
            "compressed stream cut inside an intact member",
            ar_archive([binary, control, ("data.tar.xz", data[1][: len(data[1]) // 2])]),
            "truncated: data.tar.xz ends early (its compressed stream is incomplete)",
        ),
        (
            "flipped bytes in data.tar.xz",
            ar_archive([binary, control, ("data.tar.xz", data[1][:5000] + b"\xff" * 64 + data[1][5064:])]),
            "corrupt: data.tar.xz",
        ),
        (
            "bad header terminator",
            hello[:66] + b"XX" + hello[68:],
            "corrupt: ar member #1 has a malformed header",
        ),
        ("data before control", ar_archive([binary, data, control]), "comes where control.tar"),
        (
            "no debian-binary",
            ar_archive([control, data]),
            "the first ar member is 'control.tar.xz'",
        ),
        (
            "debian-binary 3.0",
            ar_archive([("debian-binary", b"3.0\n"), control, data]),
            "debian-binary does not say 2.0",
        ),
        (
            "member ../x",
            ar_archive([binary, ("../x", b"x"), control, data]),
            "ar member name '../x' is not allowed",
        ),
        (
            "member /etc/passwd",
            ar_archive([binary, ("/etc/passwd", b"x"), control, data]),
            "is not allowed",
        ),
        ("extra member", ar_archive([*members, ("evil.sh", b"rm -rf /")]), "unexpected ar member"),
        (
            "bzip2 control",
            ar_archive([binary, ("control.tar.bz2", compress(b"", "bz2")), data]),
            "'control.tar.bz2' comes where control.tar",
        ),
        (
            "control named ../control",
            ar_archive(
                [
                    binary,
                    ("control.tar.xz", compress(tar_bytes([("../control", ctl.encode())]), "xz")),
                    data,
                ]
            ),
            "has a '..' component",
        ),
        (
            "no control file",
            ar_archive([binary, ("control.tar.xz", compress(tar_bytes([("./md5sums", b"")]), "xz")), data]),
            "control.tar.xz has no control file",
        ),
        (
            "control is a symlink",
            ar_archive(
                [
                    binary,
                    (
                        "control.tar.xz",
                        compress(tar_bytes([], symlinks={"./control": "/etc/passwd"}), "xz"),
                    ),
                    data,
                ]
            ),
            "control is not a regular file",
        ),
        (
            "control.tar.xz is not a tar",
            ar_archive([binary, ("control.tar.xz", compress(b"x" * 1000, "xz")), data]),
            "corrupt: control.tar.xz is not a valid tar archive",
        ),
        (
            "data escapes with ..",
            ar_archive(
                [
                    binary,
                    control,
                    ("data.tar.xz", compress(tar_bytes([("./../../etc/x", b"x")]), "xz")),
                ]
            ),
            "data.tar.xz entry './../../etc/x' has a '..' component",
        ),
        ("not 'Field: value'", with_control(ctl + "Nonsense line\n"), "is not 'Field: value'"),
        (
            "two paragraphs",
            with_control(ctl + "\nPackage: other\n"),
            "control file has more than one paragraph",
        ),
        ("duplicate field", with_control(ctl + "Version: 9\n"), "control file has Version twice"),
        ("comment", with_control("# hi\n" + ctl), "has a comment line"),
        ("latin-1", with_control(ctl.encode() + b"X-Name: Ren\xe9\n"), "not valid UTF-8"),
        ("empty version", with_control(replace_field(ctl, "Version", "")), "empty Version"),
        (
            "bad Source",
            with_control(replace_field(ctl, "Source", "../evil")),
            "invalid Source field",
        ),
        (
            "bad Installed-Size",
            with_control(replace_field(ctl, "Installed-Size", "lots")),
            "Installed-Size 'lots' is not a number",
        ),
        (
            "broken Depends (dpkg's second opinion)",
            with_control(replace_field(ctl, "Depends", "libc6 (>= 2.34")),
            "dpkg refuses the control file: 'Depends' field",
        ),
    ]
    for field in ("Package", "Version", "Architecture", "Maintainer", "Description"):
        cases.append(
            (
                f"no {field}",
                with_control(replace_field(ctl, field, None)),
                f"control file lacks {field}",
            )
        )
    for name in ("../x", "Hello", "a", "foo_bar", "-foo", "hello world", "héllo"):
        cases.append(
            (
                f"name {name!r}",
                with_control(replace_field(ctl, "Package", name)),
                "invalid package name",
            )
        )
    for version in ("1..2:", "abc", "1.0-", "1:", ":1.0", "1.0 beta", "1.0-1_2", "a:1.0", "1.0/2"):
        cases.append(
            (
                f"version {version!r}",
                with_control(replace_field(ctl, "Version", version)),
                "invalid version",
            )
        )
    for arch in ("amd64 i386", "any", "AMD64", "../x", "linux-any", "pdp11", "amd64,i386"):
        cases.append(
            (
                f"arch {arch!r}",
                with_control(replace_field(ctl, "Architecture", arch)),
                "invalid architecture",
            )
        )
    return cases


BAD = _bad_corpus()


@pytest.mark.parametrize("what,data,message", BAD, ids=[c[0] for c in BAD])
def test_bad_corpus_is_refused_with_its_reason_and_nothing_is_stored(tmp_path, what, data, message):
    upload = tmp_path / "upload.deb"
    upload.write_bytes(data)
    pool = tmp_path / "pool"
    pool.mkdir()
    with pytest.raises(InvalidPackage) as err:
        ingest_deb(pool, upload, LIMIT)
    assert message in str(err.value), f"{what}: {err.value}"
    assert err.value.code == "invalid_package"
    assert list(pool.rglob("*")) == []


def test_over_the_limit_uses_the_real_size(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    with pytest.raises(InvalidPackage, match="too large: 53080 bytes, the limit is 53079 bytes"):
        ingest_deb(pool, HELLO, 53079)
    assert list(pool.rglob("*")) == []
    assert inspect_deb(HELLO, 53080).size == 53080  # exactly at the limit is fine


def test_decompression_bomb_is_capped(tmp_path):
    deb = dpkg_build(
        tmp_path,
        control=SMALL_CONTROL,
        files={"usr/share/uus-demo/zeros": b"\0" * (4 << 20)},
        compression="xz",
    )
    assert os.path.getsize(deb) < 20_000
    with pytest.raises(InvalidPackage, match="unpacks to more than 1048576 bytes"):
        inspect_deb(deb, LIMIT, max_unpacked_bytes=1 << 20)


def test_zstd_truncated_inside_intact_member(tmp_path):
    deb = dpkg_build(tmp_path, control=SMALL_CONTROL, files={"usr/share/x": os.urandom(5000)}, compression="zstd")
    binary, control, (name, data) = ar_members(deb.read_bytes())
    bad = tmp_path / "bad.deb"
    bad.write_bytes(ar_archive([binary, control, (name, data[: len(data) // 2])]))
    with pytest.raises(InvalidPackage, match=r"truncated or corrupt: data\.tar\.zst"):
        inspect_deb(bad, LIMIT)


def test_not_a_regular_file(tmp_path):
    with pytest.raises(InvalidPackage, match="not a regular file"):
        inspect_deb(tmp_path, LIMIT)
    link = tmp_path / "link.deb"
    link.symlink_to(HELLO)
    with pytest.raises(InvalidPackage, match="cannot open the upload"):
        inspect_deb(link, LIMIT)


# --------------------------------------------------------------------------- small parts


@pytest.mark.parametrize(
    "version,ok",
    [
        ("1.0", True),
        ("1:1.99.1-7.3", True),
        ("2.4.68-1~deb12u1", True),
        ("5.02-1+b1", True),
        ("1.0~rc1-0ubuntu1", True),
        ("1:2:3-4", True),  # colons in upstream are allowed with an epoch
        ("0.9-1-2", True),  # hyphens in upstream when a revision follows
        ("1..2:", False),
        ("1.0-", False),
        ("-1", False),
        ("1.0_1", False),
        ("", False),
        ("99999999999:1", False),
    ],
)
def test_valid_version(version, ok):
    assert valid_version(version) is ok


VERSIONS = [
    "1.0",
    "1:1.0",
    "0:0",
    "1.0-1",
    "1.0~rc1",
    "1.0+dfsg-1ubuntu0.1",
    "2:1.2.3-4~bpo12+1",
    "1:2:3",
    "0.9-1-2",
    "1.0-",
    "1..2:",
    "1:",
    ":1",
    "a:1",
    "-1",
    "1.0-1_2",
    "1.0_1",
    "abc",
    "1.0 1",
    "1.0-1:2",
    "1.0:2",
    "1.0-a",
    "1.0-~",
    "01:1.0",
    "1.0-1-",
    "1.0#1",
    "1,0",
]


@pytest.mark.parametrize("version", VERSIONS)
def test_version_check_agrees_with_dpkg(version):
    """Never accept what dpkg calls an error; refuse dpkg's warnings too (policy says so)."""
    import subprocess

    dpkg = subprocess.run(["dpkg", "--validate-version", "--", version], capture_output=True, text=True, check=False)
    if valid_version(version):
        assert dpkg.returncode == 0, dpkg.stderr
    elif dpkg.returncode == 0:
        pytest.fail(f"dpkg accepts {version!r} but we refuse it")


def test_parse_control_keeps_order_and_continuations():
    fields = parse_control("Package: a1\nDescription: short\n long\n .\n more\nZ-Field: z\n")
    assert list(fields) == ["Package", "Description", "Z-Field"]
    assert fields["Description"] == "short\n long\n .\n more"


def test_store_same_file_twice_is_one_file(tmp_path):
    pool = tmp_path / "pool"
    info = inspect_deb(HELLO, LIMIT)
    rel1 = store_file(pool, HELLO, info.sha256)
    copy = tmp_path / "copy.deb"
    copy.write_bytes(HELLO.read_bytes())
    rel2 = store_file(pool, copy, info.sha256)
    assert rel1 == rel2 == f"by-sha256/{info.sha256[:2]}/{info.sha256[2:]}"
    files = [p for p in pool.rglob("*") if p.is_file()]
    assert files == [pool / rel1]
    assert files[0].read_bytes() == HELLO.read_bytes()


def test_store_refuses_a_wrong_hash_and_leaves_nothing(tmp_path):
    from uus.repos.pool import PoolError

    pool = tmp_path / "pool"
    with pytest.raises(PoolError, match="not stored"):
        store_file(pool, HELLO, "0" * 64)
    assert [p for p in pool.rglob("*") if p.is_file()] == []


def test_pool_path_for():
    from uus.repos.pool import PoolError, pool_path_for

    assert pool_path_for("hello", "2.10-3", "amd64", None) == ("pool/main/h/hello/hello_2.10-3_amd64.deb")
    assert pool_path_for("fortune-mod", "1:1.99.1-7.3", "amd64", "fortune-mod") == (
        "pool/main/f/fortune-mod/fortune-mod_1.99.1-7.3_amd64.deb"
    )
    assert pool_path_for("libjq1", "1.6-2.1+deb12u3", "amd64", "jq") == (
        "pool/main/j/jq/libjq1_1.6-2.1+deb12u3_amd64.deb"
    )
    assert pool_path_for("libssl3", "3.0.11-1", "amd64", "openssl") == (
        "pool/main/o/openssl/libssl3_3.0.11-1_amd64.deb"
    )
    assert pool_path_for("libjq1", "1.6-2", "amd64", "libjq") == ("pool/main/libj/libjq/libjq1_1.6-2_amd64.deb")
    assert pool_path_for("lib", "1", "all") == "pool/main/l/lib/lib_1_all.deb"
    for bad in (("../x", "1", "amd64"), ("a1", "1/../..", "amd64"), ("a1", "1", "../x")):
        with pytest.raises(PoolError):
            pool_path_for(*bad)


def test_random_damage_is_refused_or_harmless(tmp_path):
    """Seeded single-byte damage anywhere in hello: refused with InvalidPackage (never another
    exception), or accepted only when it hit ar header fields dpkg ignores (date, uid, mode)."""
    import random

    base = HELLO.read_bytes()
    headers = [(at - 60, at) for _name, at, _size in _hello_offsets()]
    rnd = random.Random(20261125)
    upload = tmp_path / "x.deb"
    for _ in range(300):
        data = bytearray(base)
        at = rnd.randrange(len(data))
        data[at] = (data[at] + rnd.randrange(1, 256)) % 256
        upload.write_bytes(data)
        try:
            inspect_deb(upload, LIMIT)
        except InvalidPackage:
            continue
        assert any(start + 16 <= at < start + 48 for start, _ in headers), at


# --------------------------------------------------------------------------- in-memory tar reading


def _tarfile_listing(raw: bytes) -> list[tuple[str, str, str, int]]:
    import io
    import tarfile

    from uus.repos.debfile import _entry_of

    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return [(e.name, e.kind, e.linkname, e.size) for e in map(_entry_of, tar)]


def _member_tars() -> list[bytes]:
    """Every control and data tarball of the real packages and of packages dpkg-deb builds."""
    from uus.repos.tests.debs import decompress

    out = []
    for deb in ALL_REAL:
        for name, data in ar_members(deb.read_bytes())[1:]:
            out.append(decompress(data, name.rsplit(".", 1)[1]))
    return out


def test_in_memory_tar_reading_agrees_with_tarfile_or_steps_aside():
    """The fast header walk must list exactly what tarfile lists, or give None (tarfile then reads
    the member): on real tarballs, on ones with long names and pax headers, and on seeded damage."""
    import random

    from uus.repos.debfile import _tar_entries

    tars = _member_tars()
    long_name = "./usr/share/doc/" + "x" * 120 + "/README"
    tars.append(tar_bytes([("./", None), (long_name, b"long\n")]))  # GNU long-name header
    listed = 0
    for raw in tars:
        fast = _tar_entries(raw)
        if fast is not None:
            listed += 1
            assert [(e.name, e.kind, e.linkname, e.size) for e in fast] == _tarfile_listing(raw)
    assert _tar_entries(tars[-1]) is None  # the long name is left to tarfile
    assert listed >= len(ALL_REAL)  # real control tarballs take the fast path
    rnd = random.Random(20261202)
    small = [t for t in tars if len(t) < 200_000]
    for _ in range(400):
        raw = bytearray(rnd.choice(small))
        at = rnd.randrange(min(len(raw), 4096))
        raw[at] = (raw[at] + rnd.randrange(1, 256)) % 256
        fast = _tar_entries(bytes(raw))
        if fast is None:
            continue
        try:
            expected = _tarfile_listing(bytes(raw))
        except Exception:  # tarfile refuses what the fast walk accepted: that would be a bug
            pytest.fail(f"damage at {at}: the fast walk accepted what tarfile refuses")
        assert [(e.name, e.kind, e.linkname, e.size) for e in fast] == expected, at


# --------------------------------------------------------------------------- the second opinion


def test_second_opinion_of_a_batch_names_each_refused_file(tmp_path):
    """One apt-ftparchive and a few dpkg runs for the batch; each refusal lands on its own file."""
    from uus.repos.debfile import SecondOpinion, read_deb

    ctl = hello_control()
    files = {
        "good-hello": HELLO.read_bytes(),
        "bad-depends": with_control(replace_field(ctl, "Depends", "libc6 (>= 2.34")),
        "good-cowsay": COWSAY.read_bytes(),
        "status-field": with_control(ctl + "Status: install ok installed\n"),
        "bad-pre-depends": with_control(replace_field(ctl, "Pre-Depends", "foo (<< 1.0), , | bar")),
        "good-sl": SL.read_bytes(),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / f"{name}.deb").write_bytes(data)
        paths.append(tmp_path / f"{name}.deb")
    opinion = SecondOpinion(paths, workdir=tmp_path)
    infos = [read_deb(p, LIMIT)[0] for p in paths]
    reasons = dict(zip(files, opinion.finish(infos), strict=True))
    assert reasons["good-hello"] is reasons["good-cowsay"] is reasons["good-sl"] is None
    assert reasons["bad-depends"].startswith("dpkg refuses the control file: 'Depends' field")
    assert reasons["bad-pre-depends"].startswith("dpkg refuses the control file: 'Pre-Depends' field")
    assert "Status" in reasons["status-field"]
    assert sorted(tmp_path.iterdir()) == sorted(paths)  # the tools' work directory is gone


def test_second_opinion_sees_a_file_that_changed_after_our_check(tmp_path):
    from uus.repos.debfile import SecondOpinion, read_deb

    upload = tmp_path / "upload.deb"
    upload.write_bytes(COWSAY.read_bytes())
    info, data = read_deb(upload, LIMIT)
    assert data == COWSAY.read_bytes()
    upload.write_bytes(HELLO.read_bytes())  # swapped between our reading and the tools'
    reasons = SecondOpinion([upload], workdir=tmp_path).finish([info])
    assert reasons == ["the file changed while it was being checked"]
    upload.write_bytes(COWSAY.read_bytes()[:-1] + b"\0")  # same name and size, other bytes
    assert SecondOpinion([upload], workdir=tmp_path).finish([info]) == ["the file changed while it was being checked"]


def test_second_opinion_reports_what_apt_ftparchive_cannot_read(tmp_path):
    from uus.repos.debfile import SecondOpinion, read_deb

    good = tmp_path / "good.deb"
    good.write_bytes(HELLO.read_bytes())
    info = read_deb(good, LIMIT)[0]
    broken = tmp_path / "broken.deb"
    broken.write_bytes(HELLO.read_bytes()[:3000])
    # our own checks refused `broken` (None): apt-ftparchive's complaint about it is not needed
    assert SecondOpinion([broken, good], workdir=tmp_path).finish([None, info]) == [None, None]
    reasons = SecondOpinion([broken], workdir=tmp_path).finish([info])  # pretend we accepted it
    assert reasons[0].startswith("apt-ftparchive cannot read the package: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.deb", "good.deb"]  # nothing left behind
