"""The signing key's life cycle with the real gpg, checked by the real gpgv."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

import pytest

from uus.repos.signing import (
    SigningError,
    export_public_key,
    sign_release,
    signing_agent_stop,
    signing_key_ensure,
    signing_key_import,
    signing_key_retire,
    signing_key_rotate,
    signing_keys,
)

RELEASE = "Origin: UUS\nLabel: UUS\nSuite: uus-local\nCodename: uus-local\n"


def _keyring(tmp_path: Path, home: Path, name: str) -> Path:
    path = tmp_path / f"{name}.gpg"
    path.write_bytes(export_public_key(home, armored=False))
    return path


def _gpgv(keyring: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpgv", "--keyring", str(keyring), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


def _good_signers(keyring: Path, signed: Path) -> list[str]:
    out = subprocess.run(
        ["gpgv", "--status-fd", "1", "--keyring", str(keyring), str(signed)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [ln.split()[2] for ln in out.splitlines() if ln.startswith("[GNUPG:] VALIDSIG ")]


def _fingerprints_in(armored: bytes) -> list[str]:
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=armored,
        capture_output=True,
        check=True,
    ).stdout.decode()
    lines = out.splitlines()
    return [
        lines[i + 1].split(":")[9]
        for i, line in enumerate(lines)
        if line.startswith("pub:") and lines[i + 1].startswith("fpr:")
    ]


def _signed_release(tmp_path: Path, home: Path) -> Path:
    release = tmp_path / "dists" / "Release"
    release.parent.mkdir(parents=True, exist_ok=True)
    release.write_text(RELEASE)
    sign_release(home, release)
    return release


def test_ensure_generates_once_with_private_permissions(gnupg_home):
    fpr = signing_key_ensure(gnupg_home, "UUS Test", "uus@example.org")
    assert len(fpr) == 40
    assert signing_key_ensure(gnupg_home, "UUS Test", "uus@example.org") == fpr
    assert stat.S_IMODE(gnupg_home.stat().st_mode) == 0o700
    for p in gnupg_home.rglob("*"):
        if p.is_socket():
            continue
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), p
    assert signing_keys(gnupg_home) == {"current": fpr, "overlap": []}


def test_sign_release_inrelease_and_detached_verify_with_gpgv(tmp_path, session_key):
    home, fpr = session_key
    release = _signed_release(tmp_path, home)
    inrelease, detached = release.with_name("InRelease"), release.with_name("Release.gpg")
    text = inrelease.read_text()
    assert text.startswith("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n")
    assert RELEASE in text
    assert detached.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    keyring = _keyring(tmp_path, home, "pub")
    ok = _gpgv(keyring, inrelease)
    assert ok.returncode == 0, ok.stderr
    assert fpr in ok.stderr or fpr[-16:] in ok.stderr
    assert _gpgv(keyring, detached, release).returncode == 0
    release.write_text(RELEASE + "Extra: tampered\n")
    assert _gpgv(keyring, detached, release).returncode != 0


def test_public_export_has_no_secret(session_key):
    home, fpr = session_key
    armored = export_public_key(home)
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert b"PRIVATE" not in armored
    assert _fingerprints_in(armored) == [fpr]


def test_rotation_overlap_then_retire(tmp_path, gnupg_home):
    old = signing_key_ensure(gnupg_home, "UUS Test", "uus@example.org")
    old_ring = _keyring(tmp_path, gnupg_home, "old")
    new = signing_key_rotate(gnupg_home, "UUS Test", "uus@example.org")
    assert new != old
    assert signing_keys(gnupg_home) == {"current": new, "overlap": [old]}
    assert sorted(_fingerprints_in(export_public_key(gnupg_home))) == sorted([old, new])

    new_only = tmp_path / "new.gpg"
    new_only.write_bytes(
        subprocess.run(
            ["gpg", "--homedir", str(gnupg_home), "--batch", "--export", new],
            capture_output=True,
            check=True,
        ).stdout
    )
    release = _signed_release(tmp_path, gnupg_home)
    inrelease = release.with_name("InRelease")
    # Signed by both during the overlap, so machines with either key keep updating. gpgv exits
    # non-zero when any signature's key is missing; apt (like for Debian's own multi-signed
    # InRelease) needs one good signature from a trusted key -- test_publish checks apt itself.
    assert _good_signers(old_ring, inrelease) == [old]
    assert _good_signers(new_only, inrelease) == [new]

    signing_key_retire(gnupg_home, old)
    assert signing_keys(gnupg_home) == {"current": new, "overlap": []}
    assert _fingerprints_in(export_public_key(gnupg_home)) == [new]
    release = _signed_release(tmp_path, gnupg_home)
    assert _gpgv(new_only, release.with_name("InRelease")).returncode == 0
    assert _gpgv(old_ring, release.with_name("InRelease")).returncode != 0
    with pytest.raises(SigningError, match="cannot be retired"):
        signing_key_retire(gnupg_home, new)


def test_import_an_existing_key(tmp_path, gnupg_home, session_key, caplog):
    src_home, src_fpr = session_key
    secret = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(src_home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--armor",
            "--export-secret-keys",
            src_fpr,
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert b"PRIVATE KEY" in secret
    caplog.set_level(logging.DEBUG)
    fpr = signing_key_import(gnupg_home, secret)
    assert fpr == src_fpr
    assert signing_keys(gnupg_home)["current"] == fpr
    release = _signed_release(tmp_path, gnupg_home)
    assert _gpgv(_keyring(tmp_path, gnupg_home, "k"), release.with_name("InRelease")).returncode == 0
    assert "PRIVATE" not in caplog.text
    secret_body = secret.decode().splitlines()[3]
    assert secret_body not in caplog.text


def test_import_refuses_a_passphrase_protected_key(tmp_path, gnupg_home, caplog):
    other = tmp_path / "o"
    other.mkdir(mode=0o700)
    base = ["gpg", "--homedir", str(other), "--batch", "--pinentry-mode", "loopback"]
    try:
        subprocess.run(
            [
                *base,
                "--passphrase",
                "s3cret-pass",
                "--quick-gen-key",
                "Locked <l@example.org>",
                "ed25519",
                "sign",
                "never",
            ],
            capture_output=True,
            check=True,
        )
        secret = subprocess.run(
            [*base, "--passphrase", "s3cret-pass", "--armor", "--export-secret-keys"],
            capture_output=True,
            check=True,
        ).stdout
    finally:
        signing_agent_stop(other)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SigningError, match="cannot sign without a passphrase"):
        signing_key_import(gnupg_home, secret)
    listed = subprocess.run(
        ["gpg", "--homedir", str(gnupg_home), "--batch", "--list-secret-keys"],
        capture_output=True,
        check=False,
    ).stdout
    assert listed == b""  # removed again
    assert "s3cret-pass" not in caplog.text


def test_import_of_public_key_only_is_refused(gnupg_home, session_key):
    home, _ = session_key
    with pytest.raises(SigningError, match="no usable secret signing key"):
        signing_key_import(gnupg_home, export_public_key(home))


def test_sign_without_key_is_an_error(tmp_path, gnupg_home):
    os.makedirs(gnupg_home, mode=0o700)
    release = tmp_path / "Release"
    release.write_text(RELEASE)
    with pytest.raises(SigningError, match="no signing key yet"):
        sign_release(gnupg_home, release)
