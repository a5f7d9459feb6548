"""The repository signing key, kept in its own GNUPGHOME, driven through the real ``gpg``.

Why the gpg command line and not python-gnupg: every call here is one gpg invocation with a fixed
argument list and machine-readable output (``--with-colons``, ``--status-fd``); a wrapper adds no
safety and hides the exact options (``--pinentry-mode loopback``, ``--batch``) that matter for a
server without a terminal.

Key life cycle (state in ``<GNUPGHOME>/uus-signing.json``, mode 0600):

* :func:`signing_key_ensure` makes the first key (ed25519, no passphrase: the key file's 0600
  mode and the 0700 directory are its protection, as for any server key);
* :func:`signing_key_rotate` makes a new key, which becomes *current*; the old one moves to the
  *overlap* list. During the overlap :func:`export_public_key` exports both public keys (so
  ``key.asc`` carries both) and :func:`sign_release` signs with the new key **and** the
  overlapping ones: a machine that still trusts only the old key keeps updating, one that already
  has the new key does too (apt needs one good signature from a key in ``signed-by``);
* :func:`signing_key_retire` ends the overlap: the old key is deleted and no longer signs.

Secret material never goes through a log: gpg's stderr is logged only for failures, and gpg
does not print key material there; imported keys are passed on stdin, never on a command line.
``gpg`` starts a ``gpg-agent`` per GNUPGHOME; :func:`signing_agent_stop` stops it (tests do).
Its socket lives in ``/run/user/<uid>/gnupg/`` when that exists, otherwise in GNUPGHOME, whose
path must then stay under ~90 characters (a Unix socket path limit).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from uus.core.exceptions import UusError

__all__ = [
    "Signer",
    "SigningError",
    "export_public_key",
    "sign_release",
    "signing_agent_stop",
    "signing_key_ensure",
    "signing_key_import",
    "signing_key_retire",
    "signing_key_rotate",
    "signing_keys",
]

log = logging.getLogger(__name__)

STATE_FILE = "uus-signing.json"
GPG_TIMEOUT = 120
ALGORITHMS = ("ed25519", "rsa3072", "rsa4096")


class SigningError(UusError):
    code = "signing_error"
    status = 500


# --------------------------------------------------------------------------- gpg plumbing


def _prepare_home(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)


def _tighten(home: Path) -> None:
    """gpg leaves pubring.kbx at 0644; everything in a signing home is 0600 / 0700."""
    for root, dirs, files in os.walk(home):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            p = os.path.join(root, f)
            if not f.startswith("S.") and not os.path.islink(p):  # sockets: gpg-agent's own
                os.chmod(p, 0o600)


def _gpg(
    home: Path,
    *args: str,
    stdin: bytes | None = None,
    check: bool = True,
    what: str = "gpg",
) -> subprocess.CompletedProcess:
    cmd = [
        "gpg",
        "--homedir",
        str(home),
        "--batch",
        "--no-tty",
        "--yes",
        "--no-auto-key-locate",
        "--no-auto-key-retrieve",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",  # server keys have none; a protected key then fails instead of prompting
        *args,
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "GNUPGHOME": str(home)}
    try:
        proc = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            timeout=GPG_TIMEOUT,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise SigningError("gpg is not installed on the server") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"{what}: gpg did not answer within {GPG_TIMEOUT} s") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        log.warning("%s failed (exit %s): %s", what, proc.returncode, err[-500:])
        last = err.splitlines()[-1] if err else "no message"
        raise SigningError(f"{what} failed: {last}")
    return proc


def _secret_fingerprints(home: Path) -> list[str]:
    """Fingerprints of primary keys with a secret part that can sign, in keyring order."""
    out = _gpg(home, "--with-colons", "--list-secret-keys", check=False).stdout.decode()
    fprs, in_sec, can_sign = [], False, False
    for line in out.splitlines():
        rec = line.split(":")
        if rec[0] == "sec":
            in_sec = True
            can_sign = "S" in rec[11] if len(rec) > 11 else False
            expired_or_revoked = rec[1] in ("e", "r")
            can_sign = can_sign and not expired_or_revoked
        elif rec[0] == "fpr" and in_sec:
            if can_sign:
                fprs.append(rec[9])
            in_sec = False
    return fprs


def _read_state(home: Path) -> dict:
    try:
        with open(home / STATE_FILE) as f:
            state = json.load(f)
    except FileNotFoundError:
        return {"current": None, "overlap": []}
    state.setdefault("overlap", [])
    return state


def _write_state(home: Path, state: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=home)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, home / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _generate(home: Path, name_real: str, name_email: str, algo: str) -> str:
    if algo not in ALGORITHMS:
        raise SigningError(f"unsupported key algorithm {algo!r}; use one of {', '.join(ALGORITHMS)}")
    for part in (name_real, name_email):
        if any(c in part for c in "<>\n\r\0"):
            raise SigningError(f"invalid character in key user id part {part!r}")
    uid = f"{name_real} <{name_email}>"
    before = set(_secret_fingerprints(home))
    # 'sign' usage on the primary key: apt verifies with it directly, no subkeys to manage.
    _gpg(home, "--quick-gen-key", uid, algo, "sign", "never", what="generating the signing key")
    new = [f for f in _secret_fingerprints(home) if f not in before]
    if len(new) != 1:
        raise SigningError("gpg did not report the new key")
    _tighten(home)
    log.info("generated repository signing key %s (%s)", new[0], algo)
    return new[0]


# --------------------------------------------------------------------------- public API


def signing_keys(gnupg_home: str | os.PathLike) -> dict:
    """``{"current": fpr|None, "overlap": [fpr, ...]}``: which keys sign and are published."""
    return _read_state(Path(gnupg_home))


def signing_key_ensure(gnupg_home: str | os.PathLike, name_real: str, name_email: str, *, algo: str = "ed25519") -> str:
    """Return the current signing key's fingerprint, generating a key if there is none."""
    home = Path(gnupg_home)
    _prepare_home(home)
    state = _read_state(home)
    secrets = _secret_fingerprints(home)
    if state.get("current") in secrets:
        _tighten(home)
        return state["current"]
    fpr = secrets[0] if secrets else _generate(home, name_real, name_email, algo)
    state["current"] = fpr
    state["overlap"] = [f for f in state["overlap"] if f in secrets and f != fpr]
    _write_state(home, state)
    _tighten(home)
    return fpr


def signing_key_rotate(gnupg_home: str | os.PathLike, name_real: str, name_email: str, *, algo: str = "ed25519") -> str:
    """Make a new key current; the previous one stays published (and co-signs) until retired."""
    home = Path(gnupg_home)
    _prepare_home(home)
    state = _read_state(home)
    new = _generate(home, name_real, name_email, algo)
    old = state.get("current")
    if old and old not in state["overlap"]:
        state["overlap"].append(old)
    state["current"] = new
    _write_state(home, state)
    return new


def signing_key_retire(gnupg_home: str | os.PathLike, fingerprint: str) -> None:
    """End an overlap: delete an old key; it no longer signs nor appears in key.asc."""
    home = Path(gnupg_home)
    state = _read_state(home)
    if fingerprint == state.get("current"):
        raise SigningError("the current signing key cannot be retired; rotate first")
    if fingerprint not in state["overlap"]:
        raise SigningError(f"{fingerprint} is not an overlapping signing key")
    _gpg(home, "--delete-secret-and-public-key", fingerprint, what="deleting the old key")
    state["overlap"].remove(fingerprint)
    _write_state(home, state)
    _tighten(home)


def signing_key_import(
    gnupg_home: str | os.PathLike, armored_secret_key: str | bytes, *, make_current: bool = True
) -> str:
    """Import an organisation's own secret key (no passphrase) and, by default, sign with it.

    The key is tried on test data first, the way Pulp validates a signing service; a key that
    cannot sign unattended (passphrase, no signing capability) is removed again and refused.
    The previous current key moves to the overlap list, as with a rotation.
    """
    home = Path(gnupg_home)
    _prepare_home(home)
    data = armored_secret_key.encode() if isinstance(armored_secret_key, str) else armored_secret_key
    before = set(_secret_fingerprints(home))
    proc = _gpg(home, "--status-fd", "1", "--import", stdin=data, check=False, what="import")
    imported = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[:2] == ["[GNUPG:]", "IMPORT_OK"] and int(parts[2]) & 16:
            imported.append(parts[3])
    fprs = [f for f in _secret_fingerprints(home) if f in imported or f not in before]
    if not fprs:
        raise SigningError("no usable secret signing key in the imported data")
    fpr = fprs[0]
    probe = _gpg(home, "--local-user", fpr + "!", "--detach-sign", stdin=b"uus probe", check=False)
    if probe.returncode != 0:
        if fpr not in before:
            _gpg(home, "--delete-secret-and-public-key", fpr, check=False)
        _tighten(home)
        raise SigningError("the imported key cannot sign without a passphrase; export it without one")
    state = _read_state(home)
    if make_current and state.get("current") != fpr:
        old = state.get("current")
        if old and old not in state["overlap"]:
            state["overlap"].append(old)
        state["current"] = fpr
        state["overlap"] = [f for f in state["overlap"] if f != fpr]
    _write_state(home, state)
    _tighten(home)
    log.info("imported repository signing key %s", fpr)
    return fpr


def export_public_key(gnupg_home: str | os.PathLike, armored: bool = True) -> bytes:
    """The public keys clients must trust: the current one plus those still overlapping."""
    home = Path(gnupg_home)
    state = _read_state(home)
    fprs = [f for f in [state.get("current"), *state["overlap"]] if f]
    if not fprs:
        raise SigningError("there is no signing key yet")
    args = ["--export-options", "export-minimal", "--export"]
    if armored:
        args.insert(0, "--armor")
    out = _gpg(home, *args, *fprs, what="exporting the public key").stdout
    if not out:
        raise SigningError("gpg exported nothing")
    return out


def _signing_fingerprints(home: Path, overlap: bool) -> list[str]:
    state = _read_state(home)
    if not state.get("current"):
        raise SigningError("there is no signing key yet; call signing_key_ensure first")
    return [state["current"], *(state["overlap"] if overlap else [])]


def sign_release(
    gnupg_home: str | os.PathLike, release_path: str | os.PathLike, *, overlap: bool = True
) -> tuple[Path, Path]:
    """Write ``InRelease`` (clear-signed) and ``Release.gpg`` (detached, armored) next to
    ``release_path``, signed by the current key (and the overlapping ones unless told not to)."""
    home = Path(gnupg_home)
    release = Path(release_path)
    users: list[str] = []
    for fpr in _signing_fingerprints(home, overlap):
        users += ["--local-user", fpr + "!"]  # '!': exactly this key, not a subkey gpg prefers
    inrelease = release.with_name("InRelease")
    detached = release.with_name("Release.gpg")
    common = ["--digest-algo", "SHA512", *users]
    _gpg(home, *common, "--clearsign", "--output", str(inrelease), str(release), what="clearsign")
    _gpg(
        home,
        *common,
        "--armor",
        "--detach-sign",
        "--output",
        str(detached),
        str(release),
        what="detached signature",
    )
    return inrelease, detached


class Signer:
    """A callable for ``build_suite``: signs a Release file with the keys of one GNUPGHOME."""

    def __init__(self, gnupg_home: str | os.PathLike, *, overlap: bool = True):
        self.gnupg_home = Path(gnupg_home)
        self.overlap = overlap

    def __call__(self, release_path: Path) -> None:
        sign_release(self.gnupg_home, release_path, overlap=self.overlap)


def signing_agent_stop(gnupg_home: str | os.PathLike) -> None:
    """Stop the gpg-agent gpg started for this GNUPGHOME (only that one)."""
    subprocess.run(
        ["gpgconf", "--homedir", str(gnupg_home), "--kill", "gpg-agent"],
        capture_output=True,
        timeout=30,
        check=False,
    )
