"""Canonical's Ubuntu security notices (USN) and Ubuntu CVE records in OSV format.

Two steps, both pure Python so the importer service, the CLI and the tests share them:

* `iter_osv_documents(source)` streams JSON documents out of a directory tree, a tar archive
  (plain, .gz, .xz, .bz2), a zip, a single (optionally compressed) .json file, or an http(s)/file URL
  of any of those (downloaded to a temporary file first). The upstream tree holds ~10,000 files and
  kernel notices exceed 1.5 MB each, so documents are read one at a time and never all kept.
  A malformed file is yielded as an `OsvFormatError` naming it; the others still come.
* `parse_notice(doc)` validates one document strictly and returns a `NoticeRecord`.

Format notes (checked against the real files in tests/data/usn-osv):
one `affected` entry per (ecosystem, source package); ecosystems `Ubuntu:22.04:LTS`, interim
`Ubuntu:25.10`, `Ubuntu:Pro:22.04:LTS`, `Ubuntu:Pro:Realtime:24.04:LTS`; one ECOSYSTEM range
`introduced "0"` then `fixed` (UBUNTU-CVE records may have no fix yet); binary versions can differ
from the source version (an epoch on bsdutils). A notice's CVEs are `database_specific.cves_map` when
present and non-empty (it can be empty, or list only some: USN-7800-1 maps 6 of the 106 in `upstream`),
else the `upstream` list minus "UBUNTU-", else (schema 1.6.3) the `related` list; the raw lists are kept
on the record. Only cves_map and UBUNTU-CVE records carry an Ubuntu priority and CVSS vectors.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from uus.core.debversion import InvalidVersion, parse_version
from uus.core.exceptions import UusError

__all__ = [
    "PRIORITIES",
    "AffectedRecord",
    "BinaryRecord",
    "CveRecord",
    "CvssVector",
    "NoticeRecord",
    "OsvFormatError",
    "OsvSourceError",
    "Reference",
    "iter_notices",
    "iter_osv_documents",
    "max_priority",
    "parse_ecosystem",
    "parse_notice",
]

# Ubuntu's CVE priorities, lowest first.
PRIORITIES = ("negligible", "low", "medium", "high", "critical")
_PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # the largest real kernel notice is under 2 MB
MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024 * 1024
_CHUNK = 1024 * 1024

_ID_KINDS = (
    (re.compile(r"USN-\d+-\d+\Z"), "usn"),
    (re.compile(r"LSN-\d+-\d+\Z"), "lsn"),
    (re.compile(r"UBUNTU-CVE-\d{4}-\d+\Z"), "cve"),
)
_CVE_ID = re.compile(r"CVE-\d{4}-\d+\Z")
_ECOSYSTEM = re.compile(
    r"Ubuntu(?P<pro>:Pro(?::(?P<variant>[A-Za-z][A-Za-z0-9_.+-]*))?)?:(?P<release>\d{2}\.\d{2})(?P<lts>:LTS)?\Z"
)
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)\Z")
_CODENAME_PREFIXES = ("esm", "esm-", "realtime", "fips", "fips-updates", "fips-preview")


class OsvFormatError(UusError):
    """One document is not a usable OSV notice; `path` names it and `reason` says what is wrong."""

    code = "osv_format"

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}", details={"path": path, "reason": reason})
        self.path = path
        self.reason = reason


class OsvSourceError(UusError):
    """The source as a whole cannot be read (missing path, failed download); nothing was yielded."""

    code = "osv_source"


@dataclass(frozen=True)
class CvssVector:
    type: str  # "CVSS_V3", "CVSS_V4", ...
    vector: str  # "CVSS:3.1/AV:N/..."


@dataclass(frozen=True)
class CveRecord:
    id: str  # "CVE-2024-28085"
    priority: str | None  # Ubuntu priority, one of PRIORITIES, None when the notice does not say
    cvss: tuple[CvssVector, ...] = ()


@dataclass(frozen=True)
class BinaryRecord:
    binary_name: str
    binary_version: str


@dataclass(frozen=True)
class Reference:
    type: str
    url: str


@dataclass(frozen=True)
class AffectedRecord:
    ecosystem: str  # "Ubuntu:Pro:Realtime:24.04:LTS"
    release: str  # "24.04"
    is_lts: bool
    is_pro: bool  # the fix needs an Ubuntu Pro subscription
    pro_variant: str  # "Realtime", "FIPS", ... or ""
    source_package: str
    purl: str
    distro: str  # the purl's distro qualifier as given: "jammy", "esm-apps/jammy", "trusty/esm"
    codename: str  # the release codename from it: "jammy", "trusty"
    introduced: str | None
    fixed: str | None  # None: no fix published (yet)
    versions: tuple[str, ...]  # earlier source versions published for that release
    binaries: tuple[BinaryRecord, ...]
    availability: str
    cves: tuple[str, ...] = ()  # this entry's cves_map ids: the CVEs it fixes on this release, when given


@dataclass(frozen=True)
class NoticeRecord:
    id: str
    kind: str  # "usn", "lsn" or "cve"
    schema_version: str
    summary: str
    details: str
    published: datetime
    modified: datetime
    aliases: tuple[str, ...]
    related: tuple[str, ...]
    upstream: tuple[str, ...]
    cves: tuple[CveRecord, ...]
    priority: str | None  # the highest CVE priority
    references: tuple[Reference, ...]
    affected: tuple[AffectedRecord, ...]

    @property
    def cve_ids(self) -> list[str]:
        return [c.id for c in self.cves]


def max_priority(priorities) -> str | None:
    """The highest known Ubuntu priority among `priorities` (None and unknown names are skipped)."""
    known = [p for p in priorities if p in _PRIORITY_RANK]
    return max(known, key=_PRIORITY_RANK.__getitem__) if known else None


# --------------------------------------------------------------------------- reading sources


def iter_osv_documents(
    source: str | os.PathLike, *, timeout: float = 60.0
) -> Iterator[tuple[str, dict | OsvFormatError]]:
    """Yield (name, document) for every JSON document in `source`, or (name, OsvFormatError).

    `name` is the file's path, or "ARCHIVE:MEMBER" inside an archive. Raises OsvSourceError only
    when the source itself cannot be opened (missing path, download failure).
    """
    text = os.fspath(source)
    scheme = urllib.parse.urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "file":
        yield from _iter_local(urllib.request.url2pathname(urllib.parse.urlsplit(text).path), text)
    elif scheme in ("http", "https"):
        with tempfile.TemporaryDirectory(prefix="uus-osv-") as tmp:
            path = os.path.join(tmp, "download")
            _download(text, path, timeout)
            yield from _iter_local(path, text)
    elif scheme:
        raise OsvSourceError(f"{text}: unsupported URL scheme {scheme!r} (use http, https or file)")
    else:
        yield from _iter_local(text, text)


def iter_notices(source: str | os.PathLike, **kwargs) -> Iterator[tuple[str, NoticeRecord | OsvFormatError]]:
    """`iter_osv_documents` then `parse_notice`: what an importer loops over."""
    for name, doc in iter_osv_documents(source, **kwargs):
        if isinstance(doc, OsvFormatError):
            yield name, doc
            continue
        try:
            yield name, parse_notice(doc, source=name)
        except OsvFormatError as e:
            yield name, e


def _download(url: str, dest: str, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "uus-osv-import"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
            total = 0
            while chunk := resp.read(_CHUNK):
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise OsvSourceError(f"{url}: download larger than {MAX_DOWNLOAD_BYTES} bytes, refused")
                out.write(chunk)
            expected = resp.headers.get("Content-Length")
            if expected and expected.isdigit() and int(expected) != total:
                raise OsvSourceError(f"{url}: download truncated ({total} of {expected} bytes)")
    except urllib.error.HTTPError as e:
        raise OsvSourceError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise OsvSourceError(f"{url}: download failed: {reason}") from e


def _iter_local(path: str, name: str) -> Iterator[tuple[str, dict | OsvFormatError]]:
    if os.path.isdir(path):
        yield from _iter_directory(path)
        return
    try:
        f = open(path, "rb")
    except OSError as e:
        raise OsvSourceError(f"{name}: cannot open: {e.strerror or e}") from e
    with f:
        head = f.read(512)
        f.seek(0)
        kind = _sniff(head)
        if kind == "zip":
            yield from _iter_zip(f, name)
        elif kind == "json":
            yield name, _load(name, f.read(MAX_DOCUMENT_BYTES + 1))
        else:
            yield from _iter_tar_or_compressed(f, name, kind)


def _sniff(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "json"


def _iter_directory(root: str) -> Iterator[tuple[str, dict | OsvFormatError]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith(".") or not fn.endswith(".json"):
                continue
            p = os.path.join(dirpath, fn)
            try:
                with open(p, "rb") as f:
                    data = f.read(MAX_DOCUMENT_BYTES + 1)
            except OSError as e:
                yield p, OsvFormatError(p, f"cannot read: {e.strerror or e}")
                continue
            yield p, _load(p, data)


def _decompressor(f, kind: str):
    if kind == "gz":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(f, "rb")
    return bz2.BZ2File(f, "rb")


_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error)


def _iter_tar_or_compressed(f, name: str, kind: str) -> Iterator[tuple[str, dict | OsvFormatError]]:
    """A tar archive (plain or compressed), or one compressed document such as USN-1-1.json.xz."""
    if kind != "tar":
        try:
            with _decompressor(f, kind) as z:
                head = z.read(512)
        except _ARCHIVE_ERRORS as e:
            yield name, OsvFormatError(name, f"compressed file is truncated or corrupt: {e}")
            return
        f.seek(0)
        if _sniff(head) != "tar":
            try:
                with _decompressor(f, kind) as z:
                    data = z.read(MAX_DOCUMENT_BYTES + 1)
            except _ARCHIVE_ERRORS as e:
                yield name, OsvFormatError(name, f"compressed file is truncated or corrupt: {e}")
                return
            yield name, _load(name, data)
            return
    count = 0
    try:
        with tarfile.open(fileobj=f, mode="r|*") as tf:
            for member in tf:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                if os.path.basename(member.name).startswith("."):
                    continue
                member_name = f"{name}:{member.name}"
                if member.size > MAX_DOCUMENT_BYTES:
                    yield member_name, OsvFormatError(member_name, f"{member.size} bytes, larger than any notice")
                    continue
                data = tf.extractfile(member).read()
                count += 1
                yield member_name, _load(member_name, data)
    except _ARCHIVE_ERRORS as e:
        yield name, OsvFormatError(name, f"archive is truncated or corrupt after {count} documents: {e}")


def _iter_zip(f, name: str) -> Iterator[tuple[str, dict | OsvFormatError]]:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError) as e:
        yield name, OsvFormatError(name, f"zip archive is truncated or corrupt: {e}")
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            member_name = f"{name}:{info.filename}"
            if info.file_size > MAX_DOCUMENT_BYTES:
                yield member_name, OsvFormatError(member_name, f"{info.file_size} bytes, larger than any notice")
                continue
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
                yield member_name, OsvFormatError(member_name, f"cannot read from the archive: {e}")
                continue
            yield member_name, _load(member_name, data)


def _load(name: str, data: bytes) -> dict | OsvFormatError:
    if len(data) > MAX_DOCUMENT_BYTES:
        return OsvFormatError(name, f"larger than {MAX_DOCUMENT_BYTES} bytes, not a notice")
    if not data.strip():
        return OsvFormatError(name, "empty file")
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as e:
        return OsvFormatError(name, f"not UTF-8 text: {e}")
    except json.JSONDecodeError as e:
        return OsvFormatError(name, f"invalid JSON (truncated?): {e.msg} at line {e.lineno} column {e.colno}")
    except RecursionError:
        return OsvFormatError(name, "invalid JSON: nested too deeply")
    if not isinstance(doc, dict):
        return OsvFormatError(name, f"top level is a JSON {_json_type(doc)}, expected an object")
    return doc


# --------------------------------------------------------------------------- parsing


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Checker:
    """Typed field access that raises OsvFormatError with the JSON path of the bad field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, reason: str) -> OsvFormatError:
        return OsvFormatError(self.source, f"{where}: {reason}" if where else reason)

    def get(self, obj: dict, key: str, kind: type | tuple, where: str, *, required: bool = False, default=None):
        if key not in obj or obj[key] is None:
            if required:
                raise self.fail(where, f"missing required field {key!r}")
            return default
        value = obj[key]
        expected = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            names = " or ".join(_json_type(t()) for t in expected)
            raise self.fail(f"{where}.{key}" if where else key, f"expected {names}, got {_json_type(value)}")
        return value

    def strings(self, obj: dict, key: str, where: str) -> tuple[str, ...]:
        values = self.get(obj, key, list, where, default=[])
        for i, v in enumerate(values):
            if not isinstance(v, str):
                path = f"{where}.{key}[{i}]" if where else f"{key}[{i}]"
                raise self.fail(path, f"expected string, got {_json_type(v)}")
        return tuple(values)

    def obj(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected object, got {_json_type(value)}")
        return value

    def version(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a version string, got {_json_type(value)}")
        try:
            parse_version(value, strict=True)
        except InvalidVersion as e:
            raise self.fail(where, f"bad version {value!r}: {e.reason}") from None
        return value

    def timestamp(self, value: str, where: str) -> datetime:
        m = _TIMESTAMP.match(value)
        if not m:
            raise self.fail(where, f"not an RFC 3339 UTC timestamp: {value!r}")
        frac = (m.group(2) or "")[:7]  # Python keeps microseconds; nanoseconds are cut
        zone = "+00:00" if m.group(3) == "Z" else m.group(3)
        try:
            return datetime.fromisoformat(m.group(1) + frac + zone)
        except ValueError as e:
            raise self.fail(where, f"bad timestamp {value!r}: {e}") from None


def parse_ecosystem(ecosystem: str) -> tuple[str, bool, bool, str] | None:
    """("24.04", is_lts, is_pro, pro_variant) for an Ubuntu OSV ecosystem, None if it is not one."""
    m = _ECOSYSTEM.match(ecosystem)
    if not m:
        return None
    return m.group("release"), bool(m.group("lts")), bool(m.group("pro")), m.group("variant") or ""


def _codename(distro: str) -> str:
    parts = [p for p in distro.split("/") if p]
    plain = [p for p in parts if p not in _CODENAME_PREFIXES and not p.startswith("esm-")]
    return plain[-1] if plain else ""


def _purl_distro(purl: str) -> str:
    query = purl.partition("?")[2].partition("#")[0]
    for item in query.split("&"):
        k, _, v = item.partition("=")
        if k == "distro":
            return urllib.parse.unquote(v)
    return ""


def _severity(c: _Checker, entries: Any, where: str) -> tuple[str | None, list[CvssVector]]:
    """(Ubuntu priority, CVSS vectors) from an OSV `severity` list."""
    if entries is None:
        return None, []
    if not isinstance(entries, list):
        raise c.fail(where, f"expected array, got {_json_type(entries)}")
    priorities, vectors = [], []
    for i, s in enumerate(entries):
        s = c.obj(s, f"{where}[{i}]")
        kind = c.get(s, "type", str, f"{where}[{i}]", required=True)
        score = c.get(s, "score", str, f"{where}[{i}]", required=True)
        if kind == "Ubuntu":
            priorities.append(score.strip().lower())
        elif kind.startswith("CVSS_"):
            v = CvssVector(kind, score)
            if v not in vectors:
                vectors.append(v)
    return max_priority(priorities), vectors


def _strip_ubuntu(ident: str) -> str:
    return ident[len("UBUNTU-") :] if ident.startswith("UBUNTU-") else ident


def parse_notice(doc: Any, *, source: str | None = None) -> NoticeRecord:
    """Validate one OSV document from Canonical's feed and return it as a NoticeRecord.

    Raises OsvFormatError(source, reason) naming the first bad field (missing id, wrong types,
    an affected entry without a package, a bad version string, an unknown ecosystem...).
    """
    c = _Checker(source or "<document>")
    if not isinstance(doc, dict):
        raise c.fail("", f"top level is a JSON {_json_type(doc)}, expected an object")
    ident = c.get(doc, "id", str, "", required=True).strip()
    if source is None:
        c.source = ident or c.source
    kind = next((k for pattern, k in _ID_KINDS if pattern.match(ident)), None)
    if kind is None:
        raise c.fail("id", f"{ident!r} is not a USN-, LSN- or UBUNTU-CVE- identifier")

    schema_version = c.get(doc, "schema_version", str, "", default="")
    modified = c.timestamp(c.get(doc, "modified", str, "", required=True), "modified")
    published_text = c.get(doc, "published", str, "")
    published = c.timestamp(published_text, "published") if published_text else modified
    summary = c.get(doc, "summary", str, "", default="")
    details = c.get(doc, "details", str, "", default="")
    aliases = c.strings(doc, "aliases", "")
    related = c.strings(doc, "related", "")
    upstream = c.strings(doc, "upstream", "")
    own_priority, own_cvss = _severity(c, doc.get("severity"), "severity")
    db_specific = c.get(doc, "database_specific", dict, "", default={})
    if own_priority is None and isinstance(db_specific.get("priority"), str):
        own_priority = max_priority([db_specific["priority"].strip().lower()])

    references = []
    for i, r in enumerate(c.get(doc, "references", list, "", default=[])):
        r = c.obj(r, f"references[{i}]")
        references.append(
            Reference(
                c.get(r, "type", str, f"references[{i}]", default=""),
                c.get(r, "url", str, f"references[{i}]", required=True),
            )
        )

    cve_order: list[str] = []
    cve_priorities: dict[str, list[str | None]] = {}
    cve_vectors: dict[str, list[CvssVector]] = {}

    def add_cve(raw: str, priority: str | None = None, vectors=()) -> None:
        cve = _strip_ubuntu(raw.strip())
        if not _CVE_ID.match(cve):
            return
        if cve not in cve_priorities:
            cve_order.append(cve)
            cve_priorities[cve], cve_vectors[cve] = [], []
        cve_priorities[cve].append(priority)
        for v in vectors:
            if v not in cve_vectors[cve]:
                cve_vectors[cve].append(v)

    mapped: list[tuple[str, str | None, list[CvssVector]]] = []  # cves_map entries, added after upstream
    affected = []
    # OSV allows a record without `affected`; a notice without it fixes nothing, so it is refused.
    for i, entry in enumerate(c.get(doc, "affected", list, "", required=kind != "cve", default=[])):
        where = f"affected[{i}]"
        entry = c.obj(entry, where)
        pkg = c.obj(c.get(entry, "package", dict, where, required=True), f"{where}.package")
        ecosystem = c.get(pkg, "ecosystem", str, f"{where}.package", required=True)
        name = c.get(pkg, "name", str, f"{where}.package", required=True).strip()
        if not name:
            raise c.fail(f"{where}.package.name", "empty package name")
        eco = parse_ecosystem(ecosystem)
        if eco is None:
            raise c.fail(f"{where}.package.ecosystem", f"{ecosystem!r} is not an Ubuntu ecosystem")
        release, is_lts, is_pro, variant = eco
        purl = c.get(pkg, "purl", str, f"{where}.package", default="")
        distro = _purl_distro(purl)

        introduced = fixed = None
        for j, rng in enumerate(c.get(entry, "ranges", list, where, default=[])):
            rwhere = f"{where}.ranges[{j}]"
            rng = c.obj(rng, rwhere)
            rtype = c.get(rng, "type", str, rwhere, required=True)
            events = c.get(rng, "events", list, rwhere, required=True)
            for k, ev in enumerate(events):
                ev = c.obj(ev, f"{rwhere}.events[{k}]")
                for key, value in ev.items():
                    ewhere = f"{rwhere}.events[{k}].{key}"
                    if key not in ("introduced", "fixed", "last_affected", "limit"):
                        raise c.fail(ewhere, "unknown range event")
                    if rtype != "ECOSYSTEM":
                        continue
                    version = c.version(value, ewhere)
                    if key == "introduced" and introduced is None:
                        introduced = version
                    elif key == "fixed":
                        if fixed is not None and fixed != version:
                            raise c.fail(ewhere, f"second fixed version {version!r} after {fixed!r}")
                        fixed = version
        listed = c.get(entry, "versions", list, where, default=[])
        versions = tuple(c.version(v, f"{where}.versions[{k}]") for k, v in enumerate(listed))

        eco_specific = c.get(entry, "ecosystem_specific", dict, where, default={})
        binaries = []
        for k, b in enumerate(c.get(eco_specific, "binaries", list, f"{where}.ecosystem_specific", default=[])):
            bwhere = f"{where}.ecosystem_specific.binaries[{k}]"
            b = c.obj(b, bwhere)
            bname = c.get(b, "binary_name", str, bwhere, required=True).strip()
            if not bname:
                raise c.fail(f"{bwhere}.binary_name", "empty binary name")
            binaries.append(BinaryRecord(bname, c.version(b.get("binary_version"), f"{bwhere}.binary_version")))
        availability = c.get(eco_specific, "availability", str, f"{where}.ecosystem_specific", default="")

        entry_db = c.get(entry, "database_specific", dict, where, default={})
        cves_map = c.get(entry_db, "cves_map", dict, f"{where}.database_specific", default={})
        entry_cves: list[str] = []
        for k, cv in enumerate(c.get(cves_map, "cves", list, f"{where}.database_specific.cves_map", default=[])):
            cwhere = f"{where}.database_specific.cves_map.cves[{k}]"
            cv = c.obj(cv, cwhere)
            cve_id = c.get(cv, "id", str, cwhere, required=True)
            priority, vectors = _severity(c, cv.get("severity"), f"{cwhere}.severity")
            mapped.append((cve_id, priority, vectors))
            entry_cves.append(_strip_ubuntu(cve_id.strip()))

        affected.append(
            AffectedRecord(
                ecosystem=ecosystem,
                release=release,
                is_lts=is_lts,
                is_pro=is_pro,
                pro_variant=variant,
                source_package=name,
                purl=purl,
                distro=distro,
                codename=_codename(distro),
                introduced=introduced,
                fixed=fixed,
                versions=versions,
                binaries=tuple(binaries),
                availability=availability,
                cves=tuple(dict.fromkeys(x for x in entry_cves if _CVE_ID.match(x))),
            )
        )

    # The notice's CVEs, by the rule the catalog specifies: cves_map when present and non-empty, else
    # `upstream` minus "UBUNTU-", else `related`. The raw lists stay on the record (aliases, related,
    # upstream) so nothing the file says is lost.
    if kind == "cve":
        add_cve(ident, own_priority, own_cvss)
    if any(_CVE_ID.match(_strip_ubuntu(m[0].strip())) for m in mapped):
        for cve_id, priority, vectors in mapped:
            add_cve(cve_id, priority, vectors)
    elif any(_CVE_ID.match(_strip_ubuntu(u.strip())) for u in upstream):
        for u in upstream:
            add_cve(u, own_priority if kind == "cve" else None, own_cvss if kind == "cve" else ())
    else:
        for r in related:
            add_cve(r)
    cves = tuple(CveRecord(cve, max_priority(cve_priorities[cve]), tuple(cve_vectors[cve])) for cve in cve_order)
    notice_priority = max_priority([cv.priority for cv in cves] + [own_priority])

    return NoticeRecord(
        id=ident,
        kind=kind,
        schema_version=schema_version,
        summary=summary,
        details=details,
        published=published,
        modified=modified,
        aliases=aliases,
        related=related,
        upstream=upstream,
        cves=cves,
        priority=notice_priority,
        references=tuple(references),
        affected=tuple(affected),
    )
