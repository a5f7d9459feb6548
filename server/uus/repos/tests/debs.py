"""Build real and deliberately broken .deb files for the tests, from the real packages in data/.

Every bad package is made here in code, so the test that uses it shows exactly what is wrong.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import tarfile
from pathlib import Path

DATA = Path(__file__).parent / "data"
HELLO = DATA / "hello_2.10-3_amd64.deb"
COWSAY = DATA / "cowsay_3.03+dfsg2-8_all.deb"
SL = DATA / "sl_5.02-1+b1_amd64.deb"
FORTUNE = DATA / "fortune-mod_1%3a1.99.1-7.3_amd64.deb"
MOD_MD = DATA / "libapache2-mod-md_2.4.68-1~deb12u1_amd64.deb"
ALL_REAL = (COWSAY, HELLO, SL, FORTUNE, MOD_MD)


def ar_members(data: bytes) -> list[tuple[str, bytes]]:
    """A minimal ar reader for well-formed test inputs (the code under test has its own)."""
    assert data[:8] == b"!<arch>\n"
    pos, out = 8, []
    while pos < len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().rstrip(" ").rstrip("/")
        size = int(header[48:58])
        out.append((name, data[pos + 60 : pos + 60 + size]))
        pos += 60 + size + (size & 1)
    return out


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    parts = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}".encode() + b"`\n"
        assert len(header) == 60, name
        parts += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(parts)


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gz":
        return gzip.compress(data, mtime=0)
    if kind == "xz":
        return lzma.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "zst":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    assert kind == ""
    return data


def decompress(data: bytes, kind: str) -> bytes:
    if kind == "xz":
        return lzma.decompress(data)
    if kind == "gz":
        return gzip.decompress(data)
    raise AssertionError(kind)


def tar_bytes(entries: list[tuple[str, bytes | None]], *, symlinks: dict | None = None) -> bytes:
    """entries: (name, content) for files, (name, None) for directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def hello_control() -> str:
    members = dict(ar_members(HELLO.read_bytes()))
    with tarfile.open(fileobj=io.BytesIO(decompress(members["control.tar.xz"], "xz"))) as tar:
        return tar.extractfile("./control").read().decode()


def with_control(control: str | bytes, *, kind: str = "xz", base: Path = HELLO) -> bytes:
    """The real package ``base`` with its control file replaced (data member unchanged)."""
    members = ar_members(base.read_bytes())
    body = control.encode() if isinstance(control, str) else control
    ctar = compress(tar_bytes([("./", None), ("./control", body)]), kind)
    return ar_archive([members[0], (f"control.tar{'.' + kind if kind else ''}", ctar), members[2]])


def replace_field(control: str, field: str, value: str | None) -> str:
    """Set (or with None remove) a single-line field in a control text."""
    out, skipping, found = [], False, False
    for line in control.splitlines():
        if line.startswith(f"{field}:"):
            skipping = found = True
            if value is not None:
                out.append(f"{field}: {value}")
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        out.append(line)
    if not found and value is not None:
        out.insert(1, f"{field}: {value}")
    return "\n".join(out) + "\n"


def dpkg_build(tmp: Path, *, control: str, files: dict[str, bytes], compression: str) -> Path:
    """Build a package with the real ``dpkg-deb --build`` (valid by construction)."""
    root = tmp / "pkgroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(control)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    out = tmp / "built.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


SMALL_CONTROL = """\
Package: uus-demo
Version: 1.0-1
Architecture: all
Maintainer: UUS Tests <tests@example.org>
Description: a tiny package made by the tests
 It only ships one file.
"""
