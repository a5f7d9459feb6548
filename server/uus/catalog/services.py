"""Writes of the catalog: notice import and upstream archive sync."""

from __future__ import annotations

import itertools
import logging
import re as _re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone

from uus.core.debversion import version_key
from uus.core.exceptions import Conflict, UusError

from .choices import priority_rank
from .models import AffectedPackage, ArchivePackage, Cve, Notice, NoticeCve, Upstream, UpstreamIndex
from .signals import archive_changed, notices_changed
from .sources import apt
from .sources.osv import NoticeRecord, OsvFormatError, iter_notices

log = logging.getLogger(__name__)


@dataclass
class NoticeImportResult:
    imported: int = 0  # new notices
    updated: int = 0  # replaced by a newer `modified`
    unchanged: int = 0  # same or older than what is stored
    failed: list[dict] = field(default_factory=list)  # {"path", "reason"}

    def as_dict(self) -> dict:
        return {"imported": self.imported, "updated": self.updated, "unchanged": self.unchanged, "failed": self.failed}


def _cvss_json(vectors) -> list[dict]:
    return [{"type": v.type, "vector": v.vector} for v in vectors]


def _length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def notice_oversized(rec: NoticeRecord) -> str:
    """Why a notice does not fit the catalog's columns ("" when it does). Checked before writing, so
    that SQLite (which does not enforce lengths) and PostgreSQL refuse the same notices."""
    checks = [("id", rec.id, _length(Notice, "id"))]
    checks += [(f"CVE {c.id}", c.id, _length(Cve, "id")) for c in rec.cves]
    for i, a in enumerate(rec.affected):
        where = f"affected[{i}]"
        checks += [
            (f"{where}.package.name", a.source_package, _length(AffectedPackage, "source")),
            (f"{where}.package.ecosystem", a.ecosystem, _length(AffectedPackage, "ecosystem")),
            (f"{where} Pro variant", a.pro_variant, _length(AffectedPackage, "pro_variant")),
            (f"{where}.package.purl", a.purl, _length(AffectedPackage, "purl")),
            (f"{where} distro", a.distro, _length(AffectedPackage, "distro")),
            (f"{where} codename", a.codename, _length(AffectedPackage, "codename")),
            (f"{where} introduced version", a.introduced or "", _length(AffectedPackage, "introduced")),
            (f"{where} fixed version", a.fixed or "", _length(AffectedPackage, "fixed")),
            (f"{where}.ecosystem_specific.availability", a.availability, _length(AffectedPackage, "availability")),
        ]
    for label, value, limit in checks:
        if len(value) > limit:
            return f"{label} is {len(value)} characters long, more than the {limit} the catalog keeps"
    return ""


@transaction.atomic
def notice_store(rec: NoticeRecord) -> str:
    """Store one parsed notice, replacing an older copy whole. Returns imported/updated/unchanged."""
    existing = Notice.objects.select_for_update().filter(pk=rec.id).first()
    if existing is not None and existing.modified >= rec.modified:
        return "unchanged"
    outcome = "updated" if existing else "imported"
    fields = {
        "kind": rec.kind,
        "schema_version": rec.schema_version,
        "summary": rec.summary,
        "details": rec.details,
        "published": rec.published,
        "modified": rec.modified,
        "priority": rec.priority or "",
        "priority_rank": priority_rank(rec.priority),
        "aliases": list(rec.aliases),
        "related": list(rec.related),
        "upstream_ids": list(rec.upstream),
        "references": [{"type": r.type, "url": r.url} for r in rec.references],
    }
    if existing:
        existing.affected.all().delete()
        NoticeCve.objects.filter(notice=existing).delete()
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.save()
        notice = existing
    else:
        notice = Notice.objects.create(pk=rec.id, **fields)
    # CVEs in three statements whatever their number (a kernel notice names hundreds): read the known
    # ones, insert the new ones, raise the priority of those this notice rates and the catalog did not.
    known = Cve.objects.in_bulk([c.id for c in rec.cves])
    fresh = {
        c.id: Cve(pk=c.id, priority=c.priority or "", priority_rank=priority_rank(c.priority), cvss=_cvss_json(c.cvss))
        for c in rec.cves
        if c.id not in known
    }
    Cve.objects.bulk_create(fresh.values(), ignore_conflicts=True)  # a concurrent import may have added one
    now, changed_cves = timezone.now(), []
    for c in rec.cves:
        cve = known.get(c.id)
        if cve is not None and c.priority and (c.priority != cve.priority or (c.cvss and not cve.cvss)):
            cve.priority, cve.priority_rank = c.priority, priority_rank(c.priority)
            cve.cvss, cve.updated = _cvss_json(c.cvss) or cve.cvss, now
            changed_cves.append(cve)
    Cve.objects.bulk_update(changed_cves, ["priority", "priority_rank", "cvss", "updated"])
    links = [
        NoticeCve(notice=notice, cve_id=c.id, position=pos, priority=c.priority or "", cvss=_cvss_json(c.cvss))
        for pos, c in enumerate(rec.cves)
    ]
    NoticeCve.objects.bulk_create(links)
    AffectedPackage.objects.bulk_create(
        [
            AffectedPackage(
                notice=notice,
                ecosystem=a.ecosystem,
                release=a.release,
                is_lts=a.is_lts,
                is_pro=a.is_pro,
                pro_variant=a.pro_variant,
                source=a.source_package,
                codename=a.codename,
                distro=a.distro,
                purl=a.purl,
                introduced=a.introduced or "0",
                introduced_key=version_key(a.introduced or "0"),
                fixed=a.fixed or "",
                fixed_key=version_key(a.fixed) if a.fixed else None,
                versions=list(a.versions),
                binaries=[{"name": b.binary_name, "version": b.binary_version} for b in a.binaries],
                availability=a.availability or "",
                cves=list(a.cves),
            )
            for a in rec.affected
        ]
    )
    return outcome


def notices_import(source: str, *, ctx=None) -> NoticeImportResult:
    """Import OSV notices from a directory, archive, file or URL. Each notice is stored whole or not at
    all; a malformed file is reported with its path and reason and the others are imported."""
    result = NoticeImportResult()
    changed: list[str] = []
    for n, (name, rec) in enumerate(iter_notices(source), 1):
        if isinstance(rec, OsvFormatError):
            result.failed.append({"path": name, "reason": rec.reason})
            if ctx:
                ctx.log(f"skipped {name}: {rec.reason}")
        elif reason := notice_oversized(rec):
            result.failed.append({"path": name, "reason": reason})
            log.warning("notices import: skipped %s: %s", name, reason)
        else:
            try:
                outcome = notice_store(rec)
            except DataError as exc:  # a value the schema cannot hold: this notice only, rolled back whole
                reason = f"{rec.id} does not fit the catalog: {str(exc).splitlines()[0]}"
                result.failed.append({"path": name, "reason": reason})
                log.warning("notices import: skipped %s: %s", name, reason)
                outcome = None
            if outcome:
                setattr(result, outcome, getattr(result, outcome) + 1)
            if outcome in ("imported", "updated"):
                changed.append(rec.id)
        if ctx:
            ctx.set_done(n)
            if len(changed) >= 500:
                notices_changed.send(sender=Notice, notice_ids=changed)
                changed = []
    if changed:
        notices_changed.send(sender=Notice, notice_ids=changed)
    log.info("notices import from %s: %s", source, result.as_dict())
    return result


# --------------------------------------------------------------------------- upstream archives


_NAME = _re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_WORD = _re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,99}$")
_BATCH = 5000


def keyring_from_text(text: str) -> bytes:
    """Keys given through the API: ASCII armor as is, binary keyrings base64-encoded."""
    if "BEGIN PGP PUBLIC KEY BLOCK" in text:
        return text.encode()
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise UusError("keyring must be ASCII-armored or base64 of a binary keyring", code="invalid_keyring") from exc


def _check_keyring(data: bytes) -> list[str]:
    """Fingerprints of the public keys in `data`; refuses anything gpg does not read as keys."""
    with tempfile.TemporaryDirectory(prefix="uus-keyring-") as home:
        path = Path(home) / "keys"
        path.write_bytes(data)
        r = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    fprs = [line.split(":")[9] for line in r.stdout.splitlines() if line.startswith("fpr:")]
    if r.returncode != 0 or not fprs:
        raise UusError("the keyring holds no OpenPGP public key that gpg can read", code="invalid_keyring")
    return fprs


def _keyring_dir() -> Path:
    path = Path(settings.DATA_DIR) / "keyrings"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@transaction.atomic
def upstream_add(
    *,
    name: str,
    url: str,
    suites: list[str],
    components: list[str],
    architectures: list[str],
    keyring_data: bytes,
    replace: bool = False,
) -> Upstream:
    """Register an upstream archive; its keyring is copied into the data directory."""
    if not _NAME.match(name):
        raise UusError(f"upstream name '{name}' must be lower-case letters, digits, - and _", code="invalid")
    if not _re.match(r"^(https?|file)://", url):
        raise UusError(f"upstream URL '{url}' must start with http://, https:// or file://", code="invalid")
    for label, items in (("suites", suites), ("components", components), ("architectures", architectures)):
        if not items:
            raise UusError(f"give at least one of {label}", code="invalid")
        bad = [i for i in items if not _WORD.match(i)]
        if bad:
            raise UusError(f"invalid {label}: {', '.join(bad)}", code="invalid")
    if keyring_data.lstrip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK"):
        keyring_data = apt._dearmor(keyring_data, "keyring")
    _check_keyring(keyring_data)
    existing = Upstream.objects.filter(name=name).first()
    if existing and not replace:
        raise Conflict(f"upstream '{name}' already exists (use --replace to change it)")
    keyring = _keyring_dir() / f"{name}.gpg"
    tmp = keyring.with_suffix(".tmp")
    tmp.write_bytes(keyring_data)
    tmp.chmod(0o644)
    tmp.replace(keyring)
    upstream = existing or Upstream(name=name)
    upstream.url, upstream.suites, upstream.components = url.rstrip("/"), suites, components
    upstream.architectures, upstream.keyring = architectures, str(keyring)
    upstream.save()
    return upstream


@dataclass
class SyncResult:
    indexes_changed: int = 0
    indexes_unchanged: int = 0
    packages: int = 0

    def as_dict(self) -> dict:
        return {
            "indexes_changed": self.indexes_changed,
            "indexes_unchanged": self.indexes_unchanged,
            "packages": self.packages,
        }


def _codename(release: apt.ReleaseFile, suite: str) -> str:
    if release.codename:
        return release.codename.split("-")[0].split("/")[0]
    return suite.split("-")[0].split("/")[0]


def upstream_sync(upstream: Upstream, *, ctx=None, now=None) -> SyncResult:
    """Sync an upstream: verify every Release, fetch changed Packages indexes (verified against the
    Release), then replace the changed indexes' packages in one transaction. Any failure leaves the
    previous catalog whole, is recorded on the upstream, and is raised."""
    Upstream.objects.filter(pk=upstream.pk).update(last_sync_started=timezone.now())
    result = SyncResult()
    fetched: list[tuple[dict, apt.IndexFile]] = []
    try:
        plan = []
        for suite in upstream.suites:
            release = apt.fetch_release(upstream.url, suite, upstream.keyring, now=now)
            if ctx:
                ctx.log(f"{suite}: Release verified, signed by {', '.join(release.signed_by)}")
            for component in upstream.components:
                for arch in upstream.architectures:
                    variant = apt.choose_index(release, component, arch)
                    plain = release.entries.get(f"{component}/binary-{arch}/Packages")
                    plan.append((release, suite, component, arch, plain.sha256 if plain else variant.sha256))
        if ctx:
            ctx.set_total(len(plan))
        known = {(i.suite, i.component, i.architecture): i.sha256 for i in upstream.indexes.all()}
        for release, suite, component, arch, sha in plan:
            if known.get((suite, component, arch)) == sha:
                result.indexes_unchanged += 1
                if ctx:
                    ctx.log(f"{suite}/{component}/{arch}: unchanged")
                    ctx.advance()
                continue
            index_file = apt.fetch_index(release, component, arch)
            fetched.append(
                (
                    {
                        "suite": suite,
                        "component": component,
                        "architecture": arch,
                        "sha256": sha,
                        "codename": _codename(release, suite),
                        "pocket": apt.pocket_of(suite),
                        "variant": index_file.variant.url,
                        "release_date": release.date,
                    },
                    index_file,
                )
            )
            if ctx:
                ctx.log(f"{suite}/{component}/{arch}: fetched {index_file.variant.path}")
        changed_ids = _replace_indexes(upstream, fetched, result, ctx)
    except apt.ArchiveError as exc:
        Upstream.objects.filter(pk=upstream.pk).update(last_error=exc.message, last_error_at=timezone.now())
        raise
    except Exception as exc:
        Upstream.objects.filter(pk=upstream.pk).update(
            last_error=f"{type(exc).__name__}: {exc}", last_error_at=timezone.now()
        )
        raise
    finally:
        for _, f in fetched:
            f.cleanup()
    Upstream.objects.filter(pk=upstream.pk).update(last_success=timezone.now(), last_error="")
    if changed_ids:
        archive_changed.send(sender=Upstream, upstream=upstream, index_ids=changed_ids)
    return result


# Rows of a sync go in with one prepared INSERT through executemany (psycopg pipelines it; SQLite runs
# it in C): Django's bulk_create spent more time compiling SQL for 63,440 rows than the database did.
_ARCHIVE_FIELDS = [f for f in ArchivePackage._meta.concrete_fields if not f.primary_key]


def _archive_insert_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _ARCHIVE_FIELDS)
    values = ", ".join(["%s"] * len(_ARCHIVE_FIELDS))
    return f"INSERT INTO {quote(ArchivePackage._meta.db_table)} ({columns}) VALUES ({values})"


def _archive_rows(index_id: int, packages, keys: dict[str, bytes]):
    """One tuple per package, in the order of _ARCHIVE_FIELDS; version keys computed once per version."""
    order = [f.attname for f in _ARCHIVE_FIELDS]
    for p in packages:
        version, source_version = p["version"], p["source_version"]
        if (key := keys.get(version)) is None:
            key = keys[version] = version_key(version)
        if (source_key := keys.get(source_version)) is None:
            source_key = keys[source_version] = version_key(source_version)
        row = {
            "index_id": index_id,
            "name": p["package"],
            "version": version,
            "version_key": key,
            "architecture": p["architecture"],
            "source": p["source"],
            "source_version": source_version,
            "source_version_key": source_key,
            "section": p.get("section") or "",
            "priority": p.get("priority") or "",
            "size": p.get("size") or 0,
            "sha256": p.get("sha256") or "",
            "filename": p.get("filename") or "",
        }
        yield tuple(row[name] for name in order)


@transaction.atomic
def _replace_indexes(upstream: Upstream, fetched, result: SyncResult, ctx) -> list[int]:
    changed = []
    now = timezone.now()
    sql = _archive_insert_sql()
    keys: dict[str, bytes] = {}
    for meta, index_file in fetched:
        index, _ = UpstreamIndex.objects.get_or_create(
            upstream=upstream,
            suite=meta["suite"],
            component=meta["component"],
            architecture=meta["architecture"],
            defaults={"codename": meta["codename"], "pocket": meta["pocket"]},
        )
        ArchivePackage.objects.filter(index=index).delete()
        count = 0
        with index_file.open() as fh, connection.cursor() as cursor:
            rows = _archive_rows(index.pk, apt.iter_packages(fh), keys)
            while batch := list(itertools.islice(rows, _BATCH)):
                cursor.executemany(sql, batch)
                count += len(batch)
                if ctx:
                    ctx.log(f"{meta['suite']}/{meta['component']}/{meta['architecture']}: {count} packages")
        index.codename, index.pocket, index.sha256 = meta["codename"], meta["pocket"], meta["sha256"]
        index.variant, index.package_count, index.last_synced = meta["variant"], count, now
        index.release_date = meta["release_date"]
        index.save()
        result.indexes_changed += 1
        result.packages += count
        changed.append(index.pk)
        if ctx:
            ctx.advance()
    return changed
