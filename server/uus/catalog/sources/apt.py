"""Fetch and verify upstream APT archives the way apt does, as pure functions (no Django).

Trust flows as in apt: the keyring vouches for `dists/SUITE/InRelease` (or `Release` + `Release.gpg`),
checked by `gpgv`; only the bytes gpgv itself extracts as signed are parsed, never the text around a
clearsigned message. The signed Release then vouches for each index by size and SHA256, and an
index is used only after both match. A Release past its `Valid-Until` is refused, so a mirror
cannot replay an old (vulnerable) state forever.

Typical use (the sync service adds the database side):

    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    release = fetch_release("http://deb.debian.org/debian", "bookworm", keyring)
    with fetch_index(release, "main", "amd64") as index, index.open() as f:
        for pkg in iter_packages(f):
            ...
"""

from __future__ import annotations

import base64
import bz2
import contextlib
import gzip
import hashlib
import http.client
import logging
import lzma
import os
import posixpath
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO

from debian import deb822

from uus.core.debversion import InvalidVersion, parse_version
from uus.core.exceptions import UusError

__all__ = [
    "ArchiveError",
    "ChecksumMismatch",
    "DownloadError",
    "ExpiredRelease",
    "IndexFile",
    "IndexFormatError",
    "IndexVariant",
    "ReleaseEntry",
    "ReleaseFile",
    "ReleaseFormatError",
    "ReleaseNotYetValid",
    "SignatureError",
    "choose_index",
    "dearmor_keyring",
    "fetch_index",
    "fetch_release",
    "index_variants",
    "iter_packages",
    "pocket_of",
    "verify_release_signature",
]

log = logging.getLogger(__name__)

MAX_RELEASE_BYTES = 64 * 1024 * 1024  # Ubuntu's largest InRelease is ~300 KB
MAX_UNLISTED_BYTES = 4 * 1024 * 1024 * 1024  # decompressed index whose size the Release does not list
MAX_FUTURE = timedelta(minutes=10)  # clock skew tolerated on a Release's Date (apt: Acquire::Max-FutureTime)
# apt's preference among compressed variants; "" is the uncompressed file.
COMPRESSIONS = ("xz", "bz2", "gz", "")
_CHUNK = 1024 * 1024
_WEAK_DIGESTS = {"1": "MD5", "2": "SHA1", "3": "RIPEMD160"}  # OpenPGP hash algorithm ids
_PACKAGE_FIELDS = [
    "Package",
    "Version",
    "Architecture",
    "Source",
    "Section",
    "Priority",
    "Size",
    "SHA256",
    "Filename",
    "Description",
]
_SOURCE_FIELD = re.compile(r"\s*(\S+)(?:\s*\(\s*([^)\s]+)\s*\))?\s*\Z")


class ArchiveError(UusError):
    """An upstream archive could not be used; the message says what to check."""

    code = "archive_error"
    status = 502


class SignatureError(ArchiveError):
    """Unsigned, badly signed, or signed by a key that is not in the keyring."""

    code = "archive_signature"


class ExpiredRelease(ArchiveError):
    """The Release is outside its validity window (past Valid-Until)."""

    code = "archive_expired"


class ReleaseNotYetValid(ExpiredRelease):
    """The Release is dated in the future: a wrong clock here or upstream."""

    code = "archive_not_yet_valid"


class ChecksumMismatch(ArchiveError):
    """A file's size or SHA256 differs from what the signed Release lists."""

    code = "archive_checksum"


class DownloadError(ArchiveError):
    """HTTP error, refused connection, timeout or cut transfer. `http_status` is set for HTTP errors."""

    code = "archive_download"

    def __init__(self, message: str, *, url: str = "", http_status: int | None = None):
        super().__init__(message, details={"url": url, "http_status": http_status})
        self.url = url
        self.http_status = http_status

    @property
    def is_missing(self) -> bool:
        return self.http_status in (404, 410)


class ReleaseFormatError(ArchiveError):
    """The signed Release is not usable (no Date, no SHA256 list, unparsable fields)."""

    code = "archive_release_format"


class IndexFormatError(ArchiveError):
    """A Packages index holds a stanza that is not a usable package."""

    code = "archive_index_format"


# --------------------------------------------------------------------------- Release


@dataclass(frozen=True)
class ReleaseEntry:
    path: str  # relative to dists/SUITE/, e.g. "main/binary-amd64/Packages.xz"
    size: int
    sha256: str


@dataclass
class ReleaseFile:
    """A verified Release: what it says, who signed it, where it came from."""

    base_url: str  # archive root, no trailing slash
    suite: str  # the dists/ directory asked for: "bookworm", "jammy-security"
    url: str  # the file that was verified (InRelease or Release)
    signed_by: list[str]  # fingerprints of the keys whose good signatures were accepted
    date: datetime
    valid_until: datetime | None
    origin: str = ""
    label: str = ""
    suite_name: str = ""  # the Suite field ("oldstable")
    codename: str = ""
    version: str = ""
    description: str = ""
    acquire_by_hash: bool = False
    architectures: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    entries: dict[str, ReleaseEntry] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # every single-line field as given
    warnings: list[str] = field(default_factory=list)
    text: str = ""  # the signed content

    @property
    def dists_url(self) -> str:
        return f"{self.base_url}/dists/{self.suite}/"

    @property
    def pocket(self) -> str:
        return pocket_of(self.suite)


def pocket_of(suite: str) -> str:
    """The pocket of a suite: "security", "updates", "backports", "proposed" or "release".

    jammy-security and bookworm-security (and Debian's old "buster/updates") are security;
    bookworm-proposed-updates is proposed, not updates.
    """
    s = suite.strip("/").lower()
    if s.endswith("-proposed-updates") or s.endswith("-proposed"):
        return "proposed"
    if s.endswith("-security") or s.endswith("/updates"):
        return "security"
    if s.endswith("-updates"):
        return "updates"
    if s.endswith("-backports") or s.endswith("-backports-sloppy"):
        return "backports"
    return "release"


def fetch_release(
    base_url: str,
    suite: str,
    keyring_path: str | os.PathLike | Sequence[str | os.PathLike],
    now: datetime | None = None,
    *,
    timeout: float = 60.0,
    max_future: timedelta = MAX_FUTURE,
) -> ReleaseFile:
    """Download, verify and parse `BASE/dists/SUITE/InRelease` (else `Release` + `Release.gpg`).

    Raises SignatureError, ExpiredRelease / ReleaseNotYetValid, DownloadError, ReleaseFormatError.
    `now` (aware, default: the current time) is injectable for tests.
    """
    now = _aware(now or datetime.now(UTC))
    base_url = base_url.rstrip("/")
    suite = suite.strip("/")
    dists = f"{base_url}/dists/{suite}/"
    with tempfile.TemporaryDirectory(prefix="uus-release-") as tmp:
        inrelease = os.path.join(tmp, "InRelease")
        try:
            _download(dists + "InRelease", inrelease, max_bytes=MAX_RELEASE_BYTES, timeout=timeout)
        except DownloadError as e:
            if not e.is_missing:
                raise
            url = dists + "Release"
            release, signature = os.path.join(tmp, "Release"), os.path.join(tmp, "Release.gpg")
            try:
                _download(url, release, max_bytes=MAX_RELEASE_BYTES, timeout=timeout)
            except DownloadError as e2:
                if e2.is_missing:
                    raise DownloadError(
                        f"{dists}: neither InRelease nor Release exists; check the URL and suite name",
                        url=url,
                        http_status=e2.http_status,
                    ) from e2
                raise
            try:
                _download(dists + "Release.gpg", signature, max_bytes=MAX_RELEASE_BYTES, timeout=timeout)
            except DownloadError as e3:
                if e3.is_missing:
                    raise SignatureError(
                        f"{url} is not signed (no InRelease and no Release.gpg): refusing an unsigned archive"
                    ) from e3
                raise
            content, signers = verify_release_signature(release, keyring_path, signature=signature, name=url)
        else:
            url = dists + "InRelease"
            content, signers = verify_release_signature(inrelease, keyring_path, name=url)
    return _parse_release(
        content, base_url=base_url, suite=suite, url=url, signers=signers, now=now, max_future=max_future
    )


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _utc(dt: datetime) -> str:
    return f"{dt.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _release_date(value: str, name: str, url: str) -> datetime:
    try:
        return _aware(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError) as e:
        raise ReleaseFormatError(f"{url}: {name} {value!r} is not an RFC 2822 date") from e


def _parse_release(
    content: bytes, *, base_url: str, suite: str, url: str, signers: list[str], now: datetime, max_future: timedelta
) -> ReleaseFile:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReleaseFormatError(f"{url}: the signed Release is not UTF-8 text: {e}") from e
    try:
        rel = deb822.Release(text)
    except Exception as e:  # python-debian raises various errors on garbage
        raise ReleaseFormatError(f"{url}: cannot parse the signed Release: {e}") from e
    if "Date" not in rel:
        raise ReleaseFormatError(f"{url}: the Release has no Date field")
    date = _release_date(rel["Date"], "Date", url)
    valid_until = _release_date(rel["Valid-Until"], "Valid-Until", url) if "Valid-Until" in rel else None
    if valid_until is not None and now > valid_until:
        raise ExpiredRelease(
            f"{url} expired on {_utc(valid_until)} (now {_utc(now)}): "
            "the mirror is stale or is replaying an old Release; sync from an up-to-date mirror"
        )
    if date > now + max_future:
        raise ReleaseNotYetValid(
            f"{url} is dated {_utc(date)}, in the future (now {_utc(now)}): check this server's clock"
        )
    if not rel.get("SHA256"):
        raise ReleaseFormatError(f"{url}: the Release lists no SHA256 checksums (MD5/SHA1 alone are too weak)")
    entries = {}
    for item in rel["SHA256"]:
        try:
            entry = ReleaseEntry(item["name"], int(item["size"]), item["sha256"].lower())
        except (KeyError, ValueError) as e:
            raise ReleaseFormatError(f"{url}: bad SHA256 line {item!r}") from e
        if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or entry.size < 0:
            raise ReleaseFormatError(f"{url}: bad SHA256 line for {entry.path!r}")
        entries[entry.path] = entry
    release = ReleaseFile(
        base_url=base_url,
        suite=suite,
        url=url,
        signed_by=signers,
        date=date,
        valid_until=valid_until,
        origin=rel.get("Origin", ""),
        label=rel.get("Label", ""),
        suite_name=rel.get("Suite", ""),
        codename=rel.get("Codename", ""),
        version=rel.get("Version", ""),
        description=rel.get("Description", ""),
        acquire_by_hash=rel.get("Acquire-By-Hash", "").strip().lower() == "yes",
        architectures=rel.get("Architectures", "").split(),
        components=rel.get("Components", "").split(),
        entries=entries,
        fields={k: v for k, v in rel.items() if isinstance(v, str) and "\n" not in v.strip()},
        text=text,
    )
    last = suite.rsplit("/", 1)[-1]
    if last not in (release.suite_name, release.codename) and suite not in (release.suite_name, release.codename):
        msg = (
            f"{url}: asked for suite {suite!r} but the Release says Suite {release.suite_name!r}, "
            f"Codename {release.codename!r}"
        )
        release.warnings.append(msg)
        log.warning(msg)
    return release


# --------------------------------------------------------------------------- signatures


@dataclass
class _Sig:
    good: bool = False
    bad: str = ""
    fingerprint: str = ""
    digest: str = ""
    problem: str = ""


def verify_release_signature(
    path: str | os.PathLike,
    keyring_path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    signature: str | os.PathLike | None = None,
    name: str | None = None,
) -> tuple[bytes, list[str]]:
    """Check a clearsigned file (or `path` against a detached `signature`) with gpgv.

    Returns (signed content as gpgv extracted it, fingerprints of good signers). Accepts when at
    least one signature is good and made by a key in the keyring and none is bad, like apt.
    """
    name = name or os.fspath(path)
    if shutil.which("gpgv") is None:
        raise ArchiveError("gpgv is not installed; install the gpgv package to verify archives")
    with tempfile.TemporaryDirectory(prefix="uus-gpgv-") as home:
        keyrings = _keyring_args(keyring_path, home)
        out = os.path.join(home, "signed-content")
        cmd = ["gpgv", "--homedir", home, "--status-fd", "1", *keyrings]
        if signature is None:
            data = Path(path).read_bytes()
            _check_clearsigned_shape(data, name)
            cmd += ["--output", out, os.fspath(path)]
        else:
            cmd += [os.fspath(signature), os.fspath(path)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        try:
            proc = subprocess.run(cmd, capture_output=True, env=env, timeout=120, check=False)
        except subprocess.TimeoutExpired as e:
            raise SignatureError(f"{name}: gpgv did not finish in 120 s") from e
        signers = _judge_status(
            proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"), name, keyring_path
        )
        if signature is None:
            content = Path(out).read_bytes() if os.path.exists(out) else b""
            if not content.strip():
                raise SignatureError(f"{name}: gpgv verified a signature but returned no signed text")
        else:
            content = Path(path).read_bytes()
    return content, signers


def _keyring_args(keyring_path, home: str) -> list[str]:
    paths = [keyring_path] if isinstance(keyring_path, (str, os.PathLike)) else list(keyring_path)
    if not paths:
        raise ArchiveError("no keyring given: an archive is only trusted through its signing keys")
    args = []
    for i, p in enumerate(paths):
        p = os.path.abspath(os.fspath(p))  # gpgv looks a bare name up in its homedir
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise ArchiveError(f"keyring {p} cannot be read: {e.strerror or e}") from e
        if data.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
            p = os.path.join(home, f"keyring-{i}.gpg")
            Path(p).write_bytes(dearmor_keyring(data, p))
        args += ["--keyring", p]
    return args


def dearmor_keyring(data: bytes, name: str = "keyring") -> bytes:
    """ASCII-armored keys (.asc) to the binary keyring gpgv reads, as `gpg --dearmor` does."""
    out = bytearray()
    blocks = re.findall(rb"-----BEGIN PGP PUBLIC KEY BLOCK-----(.*?)-----END PGP PUBLIC KEY BLOCK-----", data, re.S)
    for block in blocks:
        # armor headers ("Comment: ...") and the "=CRC" line are not base64 payload
        lines = [ln.strip() for ln in block.splitlines()]
        payload = b"".join(ln for ln in lines if re.fullmatch(rb"[A-Za-z0-9+/]+=*", ln))
        try:
            out += base64.b64decode(payload, validate=True)
        except ValueError as e:
            raise ArchiveError(f"keyring {name}: bad ASCII armor: {e}") from e
    if not out:
        raise ArchiveError(f"keyring {name}: no public key block found")
    return bytes(out)


_dearmor = dearmor_keyring  # the name the catalog services first used


def _check_clearsigned_shape(data: bytes, name: str) -> None:
    """Exactly one clearsigned message and nothing around it (apt refuses the same)."""
    text = data.strip()
    if not text.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"):
        raise SignatureError(f"{name} is not a clearsigned file (it does not start with a PGP signed message)")
    if text.count(b"-----BEGIN PGP SIGNED MESSAGE-----") != 1 or text.count(b"-----BEGIN PGP SIGNATURE-----") != 1:
        raise SignatureError(f"{name} holds more than one signed message: refusing it")
    if not text.endswith(b"-----END PGP SIGNATURE-----"):
        raise SignatureError(f"{name} has unsigned text after its signature: refusing it")


def _judge_status(status: str, stderr: str, name: str, keyring_path) -> list[str]:
    sigs: list[_Sig] = []
    no_pubkey: list[str] = []
    saw_data = True
    for line in status.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        kw, *args = line[9:].split()
        if kw == "NEWSIG" or (not sigs and kw in ("GOODSIG", "BADSIG", "ERRSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG")):
            sigs.append(_Sig())
        if kw == "NEWSIG":
            continue
        sig = sigs[-1] if sigs else None
        if kw == "GOODSIG" and sig:
            sig.good = True
        elif kw == "BADSIG" and sig:
            sig.bad = args[0] if args else "?"
        elif kw == "EXPKEYSIG" and sig:
            sig.problem = f"made with the expired key {args[0] if args else '?'}"
        elif kw == "REVKEYSIG" and sig:
            sig.problem = f"made with the revoked key {args[0] if args else '?'}"
        elif kw == "EXPSIG" and sig:
            sig.problem = "expired"
        elif kw == "ERRSIG" and sig:
            sig.problem = sig.problem or f"not checkable (key {args[0] if args else '?'})"
        elif kw == "NO_PUBKEY":
            no_pubkey.append(args[0] if args else "?")
        elif kw == "VALIDSIG" and sig and args:
            sig.fingerprint = args[9] if len(args) > 9 else args[0]
            sig.digest = args[7] if len(args) > 7 else ""
        elif kw == "NODATA":
            saw_data = False
    bad = [s.bad for s in sigs if s.bad]
    if bad:
        raise SignatureError(
            f"{name}: BAD signature from key {', '.join(bad)}: the file was changed after it was signed "
            "(tampered with, or corrupted on the way)"
        )
    good = []
    for s in sigs:
        if s.good and s.fingerprint and not s.problem:
            if s.digest in _WEAK_DIGESTS:
                s.problem = f"uses the weak digest {_WEAK_DIGESTS[s.digest]}"
            else:
                good.append(s.fingerprint)
    if good:
        return good
    keyrings = keyring_path if isinstance(keyring_path, (str, os.PathLike)) else ", ".join(map(str, keyring_path))
    if not sigs or not saw_data:
        raise SignatureError(f"{name} carries no OpenPGP signature gpgv could find")
    problems = [s.problem for s in sigs if s.problem]
    if no_pubkey and all(p.startswith("not checkable") for p in problems):
        raise SignatureError(
            f"{name} is signed by key {', '.join(no_pubkey)}, which is not in the keyring {keyrings}: "
            "add the archive's signing key to that keyring if you trust it"
        )
    detail = "; ".join(problems) or (stderr.strip().splitlines() or ["gpgv gave no reason"])[-1]
    raise SignatureError(f"{name}: no valid signature ({detail})")


# --------------------------------------------------------------------------- downloads


def _download(url: str, dest: str, *, max_bytes: int, timeout: float, too_big=None) -> tuple[int, str]:
    """Stream `url` into `dest`; returns (size, sha256). Refuses more than `max_bytes`."""
    req = urllib.request.Request(url, headers={"User-Agent": "uus-archive-sync"})
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
            announced = resp.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise (too_big or _too_big)(url, int(announced), max_bytes)
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise (too_big or _too_big)(url, size, max_bytes)
                digest.update(chunk)
                out.write(chunk)
            if announced and announced.isdigit() and size < int(announced):
                raise DownloadError(f"{url}: transfer cut short after {size} of {announced} bytes", url=url)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}", url=url, http_status=e.code) from e
    except http.client.IncompleteRead as e:
        raise DownloadError(
            f"{url}: transfer cut short after {size + len(e.partial)} bytes"
            + (f" of {size + len(e.partial) + e.expected}" if e.expected else ""),
            url=url,
        ) from e
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, FileNotFoundError):
            raise DownloadError(f"{url}: no such file", url=url, http_status=404) from e
        if isinstance(reason, ConnectionRefusedError):
            raise DownloadError(f"{url}: connection refused (is the server up, is the port right?)", url=url) from e
        if isinstance(reason, TimeoutError):
            raise DownloadError(f"{url}: timed out after {timeout:g} s", url=url) from e
        if isinstance(reason, socket.gaierror):
            raise DownloadError(f"{url}: unknown host ({reason.strerror})", url=url) from e
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise DownloadError(
                f"{url}: the server's TLS certificate is not trusted ({reason.verify_message}); if the mirror "
                "uses a private CA, add that CA to this server's trust store (update-ca-certificates)",
                url=url,
            ) from e
        if isinstance(reason, ssl.SSLError):
            raise DownloadError(f"{url}: TLS failed: {reason.reason or reason}", url=url) from e
        raise DownloadError(f"{url}: cannot download: {reason}", url=url) from e
    except TimeoutError as e:
        raise DownloadError(f"{url}: timed out after {timeout:g} s", url=url) from e
    except (ConnectionError, ssl.SSLError, http.client.HTTPException) as e:
        raise DownloadError(f"{url}: connection failed during the transfer: {e}", url=url) from e
    return size, digest.hexdigest()


def _too_big(url: str, size: int, limit: int) -> ArchiveError:
    return DownloadError(f"{url}: larger than {limit} bytes, refusing it", url=url)


# --------------------------------------------------------------------------- indexes


@dataclass(frozen=True)
class IndexVariant:
    path: str  # as listed in the Release: "main/binary-amd64/Packages.xz"
    compression: str  # "xz", "bz2", "gz" or "" (uncompressed)
    size: int
    sha256: str
    url: str
    by_hash: bool


def index_variants(release: ReleaseFile, component: str, arch: str) -> list[IndexVariant]:
    """Every way to get COMPONENT/binary-ARCH/Packages that the Release lists, best first.

    Smallest compression first (xz, bz2, gz, plain); within each, the by-hash URL first when the
    archive sets Acquire-By-Hash (immune to a mirror updating while we download), then the name.
    """
    base = f"{component.strip('/')}/binary-{arch}/Packages"
    out = []
    for comp in COMPRESSIONS:
        path = f"{base}.{comp}" if comp else base
        entry = release.entries.get(path)
        if entry is None:
            continue
        if release.acquire_by_hash:
            by_hash = f"{posixpath.dirname(path)}/by-hash/SHA256/{entry.sha256}"
            out.append(IndexVariant(path, comp, entry.size, entry.sha256, release.dists_url + by_hash, True))
        out.append(IndexVariant(path, comp, entry.size, entry.sha256, release.dists_url + path, False))
    return out


def choose_index(release: ReleaseFile, component: str, arch: str) -> IndexVariant:
    """The variant apt would fetch first; ArchiveError when the Release lists none."""
    variants = index_variants(release, component, arch)
    if not variants:
        raise ArchiveError(
            f"{release.url} lists no Packages index for {component}/binary-{arch}: "
            f"components {release.components or '?'}, architectures {release.architectures or '?'}"
        )
    return variants[0]


@dataclass
class IndexFile:
    """A downloaded, verified, decompressed Packages file on disk. Deleted on exit when we made it."""

    path: Path
    variant: IndexVariant
    size: int  # of the decompressed file
    sha256: str  # of the decompressed file
    _owned: bool = False

    def open(self) -> IO[bytes]:
        return open(self.path, "rb")

    def cleanup(self) -> None:
        if self._owned:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __enter__(self) -> IndexFile:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()


def fetch_index(
    release: ReleaseFile,
    component: str,
    arch: str,
    *,
    dest: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> IndexFile:
    """Download the best listed variant of the Packages index, verify it, decompress it to `dest`.

    Tries the next variant when one is missing (HTTP 404/410), as apt does; any other failure is
    raised: ChecksumMismatch (size or SHA256 not as the Release says), DownloadError.
    Without `dest`, a temporary file is made and removed when the IndexFile is closed.
    """
    variants = index_variants(release, component, arch)
    if not variants:
        choose_index(release, component, arch)  # raises with the explanation
    plain = release.entries.get(f"{component.strip('/')}/binary-{arch}/Packages")
    missing = []
    owned = dest is None
    if owned:
        fd, tmp_dest = tempfile.mkstemp(prefix="uus-Packages-")
        os.close(fd)
        target = Path(tmp_dest)
    else:
        target = Path(dest)
    try:
        for v in variants:
            try:
                size, sha = _fetch_variant(v, plain, target, timeout)
            except DownloadError as e:
                if e.is_missing:
                    missing.append(v.url)
                    log.info("%s is missing, trying the next variant", v.url)
                    continue
                raise
            return IndexFile(target, v, size, sha, owned)
        raise DownloadError(
            f"none of the {len(missing)} listed variants of {component}/binary-{arch}/Packages exists on the "
            f"server (tried {', '.join(missing)})",
            url=missing[0] if missing else "",
            http_status=404,
        )
    except BaseException:
        if owned:
            with contextlib.suppress(OSError):
                target.unlink()
        raise


def _mismatch(url: str, what: str, expected, got) -> ChecksumMismatch:
    return ChecksumMismatch(
        f"{url}: {what} is {got}, the signed Release says {expected}: the file was altered or the mirror is "
        "inconsistent; refusing it"
    )


def _fetch_variant(v: IndexVariant, plain: ReleaseEntry | None, target: Path, timeout: float) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="uus-index-") as tmp:
        raw = os.path.join(tmp, "download")

        def too_big(url, size, limit):
            return _mismatch(url, "the size", f"{limit} bytes", f"more than {limit} bytes")

        size, sha = _download(v.url, raw, max_bytes=v.size, timeout=timeout, too_big=too_big)
        if size != v.size:
            raise _mismatch(v.url, "the size", f"{v.size} bytes", f"{size} bytes (truncated?)")
        if sha != v.sha256:
            raise _mismatch(v.url, "the SHA256", v.sha256, sha)
        if not v.compression:
            shutil.move(raw, target)
            return size, sha
        opener = {"xz": lzma.open, "bz2": bz2.open, "gz": gzip.open}[v.compression]
        limit = plain.size if plain else MAX_UNLISTED_BYTES
        digest, total = hashlib.sha256(), 0
        try:
            with opener(raw, "rb") as src, open(target, "wb") as out:
                while chunk := src.read(_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise _mismatch(v.url, "the decompressed size", f"{limit} bytes", f"more than {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
            raise ArchiveError(f"{v.url}: cannot decompress ({v.compression}): {e}") from e
        if plain is not None:
            if total != plain.size:
                raise _mismatch(v.url, "the decompressed size", f"{plain.size} bytes", f"{total} bytes")
            if digest.hexdigest() != plain.sha256:
                raise _mismatch(v.url, "the decompressed SHA256", plain.sha256, digest.hexdigest())
        return total, digest.hexdigest()


def iter_packages(fileobj: IO[bytes] | IO[str] | Iterable) -> Iterator[dict]:
    """One dict per stanza of a Packages index, with the fields the catalog stores.

    Keys: package, version, architecture, source, source_version (a binNMU "Source: sl (5.02-1)"
    gives source "sl" at 5.02-1 while version is 5.02-1+b1), section, priority, size (int or None),
    sha256, filename, description (the one-line summary). Uses python-debian's pure-Python parser
    restricted to those fields: the 63,440-package bookworm index takes about 2 s.
    """
    for n, para in enumerate(deb822.Deb822.iter_paragraphs(fileobj, fields=_PACKAGE_FIELDS, use_apt_pkg=False), 1):
        name = para.get("Package", "").strip()
        version = para.get("Version", "").strip()
        arch = para.get("Architecture", "").strip()
        if not name or not version or not arch:
            missing = [f for f, v in (("Package", name), ("Version", version), ("Architecture", arch)) if not v]
            raise IndexFormatError(f"stanza {n} ({name or 'no name'}): missing {', '.join(missing)}")
        try:
            parse_version(version)
        except InvalidVersion as e:
            raise IndexFormatError(f"stanza {n} ({name}): {e}") from e
        source, source_version = name, version
        if "Source" in para:
            m = _SOURCE_FIELD.match(para["Source"])
            if not m:
                raise IndexFormatError(f"stanza {n} ({name}): bad Source field {para['Source']!r}")
            source, source_version = m.group(1), m.group(2) or version
        size = para.get("Size", "").strip()
        yield {
            "package": name,
            "version": version,
            "architecture": arch,
            "source": source,
            "source_version": source_version,
            "section": para.get("Section", "").strip(),
            "priority": para.get("Priority", "").strip(),
            "size": int(size) if size.isdigit() else None,
            "sha256": para.get("SHA256", "").strip().lower(),
            "filename": para.get("Filename", "").strip(),
            "description": para.get("Description", "").split("\n", 1)[0].strip(),
        }
