"""A Debian-format archive signed by a throwaway OpenPGP key made with the real gpg, for tests that
need what Debian's own signed files cannot give: Release + Release.gpg, by-hash, several compressed
variants, a Valid-Until of their choosing, or a Date of today.

The Packages content is Debian's real bookworm-updates index (tests/data, see PROVENANCE.md).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
from pathlib import Path

DATA = Path(__file__).parent / "data"
REAL_PACKAGES = DATA / "debian-bookworm-updates" / "Packages"  # 38 packages, 32757 bytes

_COMPRESS = {
    "": lambda b: b,
    "xz": lzma.compress,
    "bz2": bz2.compress,
    "gz": lambda b: gzip.compress(b, mtime=0),
}


class ArchiveKey:
    """An ed25519 signing key in its own GnuPG home; ``keyring`` (binary) and ``armored`` export it."""

    def __init__(self, home: Path):
        self.home = home
        self.keyring = home / "archive.gpg"
        self.armored = home / "archive.asc"
        self.fingerprint = ""

    @classmethod
    def create(cls, home: Path) -> ArchiveKey:
        os.chmod(home, 0o700)
        key = cls(home)
        key.gpg(
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "UUS Test Archive Key <archive@uus.invalid>",
            "ed25519",
            "sign",
            "1d",
        )
        listing = key.gpg("--with-colons", "--list-keys").stdout.decode()
        key.fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        key.keyring.write_bytes(key.gpg("--export", key.fingerprint).stdout)
        key.armored.write_bytes(key.gpg("--export", "--armor", key.fingerprint).stdout)
        return key

    def gpg(self, *args, **kw):
        return subprocess.run(
            ["gpg", "--batch", "--quiet", "--homedir", str(self.home), *args], check=True, capture_output=True, **kw
        )

    def detach_sign(self, path: Path) -> None:
        self.gpg(
            "--yes", "--armor", "--local-user", self.fingerprint, "--output", f"{path}.gpg", "--detach-sign", str(path)
        )

    def clearsign(self, path: Path, out: Path) -> None:
        self.gpg("--yes", "--local-user", self.fingerprint, "--output", str(out), "--clearsign", str(path))

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], check=False, capture_output=True
        )


def build_archive(
    root: Path,
    key: ArchiveKey,
    *,
    by_hash: bool,
    inrelease: bool,
    valid_until: str = "",
    date: str = "Tue, 24 Nov 2026 00:00:00 UTC",
    suite: str = "stable",
    compressions: tuple[str, ...] = ("", "xz", "gz"),
    packages: bytes | None = None,
) -> Path:
    """ROOT/repo/dists/SUITE/ with main/binary-amd64/Packages in the given compressions ("" = plain),
    by-hash copies when asked, and a Release signed as InRelease or as Release + Release.gpg."""
    dists = root / "repo" / "dists" / suite
    bindir = dists / "main" / "binary-amd64"
    bindir.mkdir(parents=True, exist_ok=True)
    plain = REAL_PACKAGES.read_bytes() if packages is None else packages
    lines = []
    for comp in compressions:
        name = f"Packages.{comp}" if comp else "Packages"
        data = _COMPRESS[comp](plain)
        (bindir / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        lines.append(f" {digest} {len(data)} main/binary-amd64/{name}")
        if by_hash:
            (bindir / "by-hash" / "SHA256").mkdir(parents=True, exist_ok=True)
            (bindir / "by-hash" / "SHA256" / digest).write_bytes(data)
    release = dists / "Release"
    release.write_text(
        f"Origin: UUS test\nLabel: UUS test\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: {date}\n"
        + (f"Valid-Until: {valid_until}\n" if valid_until else "")
        + ("Acquire-By-Hash: yes\n" if by_hash else "")
        + "Architectures: amd64\nComponents: main\nSHA256:\n"
        + "\n".join(lines)
        + "\n"
    )
    for stale in (dists / "InRelease", dists / "Release.gpg"):
        stale.unlink(missing_ok=True)
    if inrelease:
        key.clearsign(release, dists / "InRelease")
        release.unlink()
    else:
        key.detach_sign(release)
    return dists


def have_gpg() -> bool:
    return shutil.which("gpg") is not None and shutil.which("gpgv") is not None
