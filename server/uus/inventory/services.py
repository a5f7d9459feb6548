"""Writes for machines, their enrollment and their inventories.

Inventory storage is explained in docs/decisions/0003-inventory-storage.md: packages are stored
once, inventories are content-addressed sets of content-addressed chunks, and a machine points at its
set. Every write here runs in one transaction, so a failed upload changes nothing.

Callers that may race with other requests for the same machine (the agent API) fetch the machine
with `machine_lock` inside their transaction before calling the inventory services.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.signals import post_migrate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from uus.core.debversion import version_key
from uus.core.exceptions import UusError

from . import packages as pk
from .choices import STATUS_CODES, STATUS_NAMES
from .constants import CHECK_IN_INTERVAL, PACKAGE_SET_GRACE
from .exceptions import (
    BaseMismatch,
    CloneSuspected,
    EnrollmentRefused,
    HashMismatch,
    MachineRevoked,
    MachineUnauthorized,
)
from .facts import facts_digest, facts_fields
from .models import (
    EnrollmentToken,
    InventoryChange,
    Machine,
    Package,
    PackageChunk,
    PackageChunkMember,
    PackageSet,
    PackageSetChunk,
)
from .selectors import package_set_package_ids, package_sets_diff
from .signals import inventory_changed_send

log = logging.getLogger(__name__)

ENROLL_PREFIX = "uusenr_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def credential_hash(secret: str) -> str:
    """What a machine's secret and exchange tokens are stored as: 128 bits of their SHA-256 (the
    secrets are random 192- and 256-bit tokens, so no more is needed against a read database, and
    each machine row is 96 bytes smaller; docs/performance.md, "Fleet")."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def _same(stored_hash: str, secret: str) -> bool:
    return bool(stored_hash) and hmac.compare_digest(stored_hash, credential_hash(secret))


# -- enrollment tokens ----------------------------------------------------------------------------


def parse_expiry(value: str | None) -> datetime | None:
    """'7d', '12h', '30m' from now, or an ISO 8601 time; None for no expiry."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", value)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return timezone.now() + timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: n})
    when = parse_datetime(value)
    if when is None:
        raise UusError(f"cannot read expiry '{value}': use e.g. 7d, 12h or 2026-12-31T00:00:00Z", code="invalid")
    if timezone.is_naive(when):
        when = timezone.make_aware(when, UTC)
    return when


def enrollment_token_create(
    *, comment: str = "", group: str = "", expires: datetime | None = None, max_uses: int | None = None, user=None
) -> tuple[EnrollmentToken, str]:
    if max_uses is not None and max_uses < 1:
        raise UusError("max_uses must be at least 1", code="invalid")
    key = ENROLL_PREFIX + secrets.token_urlsafe(24)
    token = EnrollmentToken.objects.create(
        prefix=key[:12],
        key_hash=key_hash(key),
        comment=comment,
        group=group,
        expires=expires,
        max_uses=max_uses,
        created_by=user if user is not None and user.is_authenticated else None,
        created_by_name=getattr(user, "username", "") or "",
    )
    return token, key


@transaction.atomic
def enrollment_token_use(key: str) -> EnrollmentToken:
    """Spend one use of a token, refusing unknown, revoked, expired and used-up tokens."""
    try:
        token = EnrollmentToken.objects.select_for_update().get(key_hash=key_hash(key or ""))
    except EnrollmentToken.DoesNotExist:
        raise EnrollmentRefused("unknown enrollment token") from None
    if token.is_revoked:
        raise EnrollmentRefused("this enrollment token was revoked")
    if token.expires and token.expires <= timezone.now():
        raise EnrollmentRefused("this enrollment token has expired")
    if token.max_uses is not None and token.uses >= token.max_uses:
        raise EnrollmentRefused("this enrollment token has been used up")
    EnrollmentToken.objects.filter(pk=token.pk).update(uses=F("uses") + 1)
    token.refresh_from_db()
    return token


def enrollment_token_revoke(*, token: EnrollmentToken) -> EnrollmentToken:
    token.is_revoked = True
    token.save(update_fields=["is_revoked", "updated"])
    return token


# -- machines: registration, authentication, check-in ---------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What a registration hands to the agent, once. Only hashes of secret and token are stored."""

    machine: Machine
    client_id: str
    secret: str
    exchange_token: str
    check_in_interval: int = CHECK_IN_INTERVAL


@transaction.atomic
def machine_register(*, token: str, facts: dict, agent_version: str = "") -> Credentials:
    """Enroll a machine with an enrollment token; returns its new credentials.

    The same machine registering again (same machine_id and hostname, not revoked: a reinstall, or
    `uus-agent register --force`) keeps its record and history; its old credentials stop working.
    """
    fields = facts_fields(facts)
    enrollment = enrollment_token_use(token)
    secret = secrets.token_urlsafe(32)
    exchange = secrets.token_urlsafe(24)
    now = timezone.now()
    machine = None
    if fields["machine_id"]:
        machine = (
            Machine.objects.select_for_update()
            .filter(machine_id=fields["machine_id"], hostname=fields["hostname"], is_revoked=False)
            .order_by("-last_seen", "-id")
            .first()
        )
    values = {
        **fields,
        "facts_hash": facts_digest(facts),
        "agent_version": agent_version[:64],
        "secret_hash": credential_hash(secret),
        "exchange_token_hash": credential_hash(exchange),
        "previous_exchange_token_hash": "",
        "client_id": "m-" + secrets.token_hex(12),
        "last_seen": now,
        "enrollment_token": enrollment,
    }
    if enrollment.group:
        values["enrollment_group"] = enrollment.group
    if machine is None:
        machine = Machine.objects.create(registered=now, **values)
        log.info(
            "machine %s (%s) registered with enrollment token %s", machine.hostname, machine.uuid, enrollment.prefix
        )
    else:
        for name, value in values.items():
            setattr(machine, name, value)
        machine.save()
        log.info(
            "machine %s (%s) registered again with enrollment token %s; its old credentials are void",
            machine.hostname,
            machine.uuid,
            enrollment.prefix,
        )
    return Credentials(machine=machine, client_id=machine.client_id, secret=secret, exchange_token=exchange)


def machine_authenticate(*, client_id: str, secret: str) -> Machine:
    """The machine with these credentials, or MachineUnauthorized / MachineRevoked."""
    machine = _machine_fetch("client_id", client_id)
    if machine is None or not _same(machine.secret_hash, secret):
        raise MachineUnauthorized("unknown machine credentials: register the machine again")
    if machine.is_revoked:
        raise MachineRevoked("this machine was revoked by an administrator: register it again with a new token")
    return machine


# The columns agent requests read. Agent requests come by the thousand per second, and building ORM
# queries was most of a check-in's cost (docs/performance.md, "Fleet"), so the agent path reads these
# with one plain SELECT into a Machine whose other fields are deferred (loaded on first use), and
# writes with one plain UPDATE (_machine_update).
AGENT_PATH_FIELDS = frozenset(
    {
        "id",
        "uuid",
        "hostname",
        "release",
        "kernel",
        "is_revoked",
        "agent_version",
        "facts_hash",
        "exchange_token_hash",
        "previous_exchange_token_hash",
        "package_set_id",
        "inventory_hash",
        "secret_hash",
    }
)


@functools.cache
def _machine_row_sql(key_column: str, for_update: bool, vendor: str) -> tuple[str, list]:
    """The SELECT of the agent path's columns by one key, built once per process (and database)."""
    fields = [f for f in Machine._meta.concrete_fields if f.attname in AGENT_PATH_FIELDS]
    q = connection.ops.quote_name
    lock = " FOR UPDATE" if for_update and connection.features.has_select_for_update else ""
    columns = ", ".join(q(f.column) for f in fields)
    return f"SELECT {columns} FROM {q(Machine._meta.db_table)} WHERE {q(key_column)} = %s{lock}", fields


def _machine_fetch(key_column: str, param, *, for_update: bool = False) -> Machine | None:
    sql, fields = _machine_row_sql(key_column, for_update, connection.vendor)
    with connection.cursor() as cur:
        cur.execute(sql, [param])
        row = cur.fetchone()
    if row is None:
        return None
    # Machine.from_db takes values in field order for the attnames given; the rest stay deferred.
    return Machine.from_db(
        connection.alias, [f.attname for f in fields], [f.to_python(v) for f, v in zip(fields, row, strict=True)]
    )


def _machine_update(machine: Machine, fields: Iterable[str]) -> None:
    """Write `fields` of `machine` with one UPDATE (values prepared by their model fields, as save() does)."""
    opts = Machine._meta
    q = connection.ops.quote_name
    assignments, params = [], []
    for name in dict.fromkeys(fields):
        f = opts.get_field(name)
        assignments.append(f"{q(f.column)} = %s")
        params.append(f.get_db_prep_save(getattr(machine, f.attname), connection))
    params.append(machine.pk)
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {q(opts.db_table)} SET {', '.join(assignments)} WHERE {q(opts.pk.column)} = %s", params)


def machine_lock(machine_pk: int) -> Machine:
    """Fetch a machine inside the current transaction, locked against concurrent requests (the columns
    of AGENT_PATH_FIELDS loaded, the rest on first use)."""
    machine = _machine_fetch("id", machine_pk, for_update=True)
    if machine is None:
        raise MachineUnauthorized("unknown machine credentials: register the machine again")
    if machine.is_revoked:
        raise MachineRevoked("this machine was revoked by an administrator: register it again with a new token")
    return machine


@dataclass(frozen=True)
class CheckIn:
    next_exchange_token: str
    inventory: str  # "ok" | "full" | "delta"
    check_in_interval: int = CHECK_IN_INTERVAL


@transaction.atomic
def machine_check_in(
    *,
    machine: Machine,
    exchange_token: str,
    facts: dict,
    inventory_hash: str,
    previous_inventory_hash: str | None,
    agent_version: str = "",
) -> CheckIn:
    """Record a check-in: rotate the exchange token, store facts, decide which inventory to ask for.

    Exchange tokens: the current one rotates; the previous one (the agent lost our last answer) is
    accepted once more; anything else means two agents use these credentials and raises
    CloneSuspected (the caller flags the machine with machine_flag_clone after rolling back).
    """
    if _same(machine.exchange_token_hash, exchange_token):
        previous = machine.exchange_token_hash
    elif _same(machine.previous_exchange_token_hash, exchange_token):
        previous = ""  # good once: a second replay of the same old token is a clone
    else:
        raise CloneSuspected(
            "this exchange token was already used: another machine is using these credentials "
            "(a cloned disk or restored backup?); register the clone again with its own token",
            details={"machine": str(machine.uuid)},
        )
    token = secrets.token_urlsafe(24)
    now = timezone.now()
    changed = ["exchange_token_hash", "previous_exchange_token_hash", "last_seen", "updated"]
    machine.exchange_token_hash = credential_hash(token)
    machine.previous_exchange_token_hash = previous
    machine.last_seen = now  # `updated` is set where the row is written (_machine_save)
    digest = facts_digest(facts)
    if digest != machine.facts_hash:  # facts rarely change: most check-ins skip their fields entirely
        for name, value in facts_fields(facts).items():
            setattr(machine, name, value)
            changed.append(name)
        machine.facts_hash = digest
        changed.append("facts_hash")
    if agent_version and agent_version[:64] != machine.agent_version:
        machine.agent_version = agent_version[:64]
        changed.append("agent_version")

    known = None
    if machine.package_set_id and inventory_hash == machine.inventory_hash:
        answer = "ok"
    else:
        known = PackageSet.objects.filter(hash=inventory_hash).first() if inventory_hash else None
        if known is not None:
            answer = "ok"  # another machine already uploaded exactly this inventory: adopt it, no upload
        elif previous_inventory_hash and (
            (machine.package_set_id and previous_inventory_hash == machine.inventory_hash)
            or PackageSet.objects.filter(hash=previous_inventory_hash).exists()
        ):
            answer = "delta"
        else:
            answer = "full"
    _machine_save(machine, changed, known, now)
    return CheckIn(next_exchange_token=token, inventory=answer)


def machine_flag_clone(*, machine: Machine) -> None:
    """Mark a machine whose credentials two agents use; called outside the refused request's transaction."""
    now = timezone.now()
    Machine.objects.filter(pk=machine.pk).update(is_clone_suspected=True, clone_suspected_at=now, updated=now)
    log.warning(
        "machine %s (%s): an old exchange token was presented; two agents share its credentials "
        "(clone suspected), the check-in was refused",
        machine.hostname,
        machine.uuid,
    )


def machine_revoke(*, machine: Machine, user=None) -> Machine:
    machine.is_revoked = True
    machine.exchange_token_hash = ""
    machine.previous_exchange_token_hash = ""
    machine.save(update_fields=["is_revoked", "exchange_token_hash", "previous_exchange_token_hash", "updated"])
    log.info("machine %s (%s) revoked by %s", machine.hostname, machine.uuid, getattr(user, "username", "system"))
    return machine


# -- inventories ------------------------------------------------------------------------------------

# (name, architecture, version, source, source_version) -> Package id. Packages are immutable and
# never deleted, so entries stay true; they are added only once their rows are committed, and the
# cache is emptied whenever the database is flushed or migrated (tests).
_PACKAGE_IDS: dict[tuple[str, str, str, str, str], int] = {}
_PACKAGE_CACHE_LIMIT = 1_000_000
_BATCH = 400


def _forget_package_ids(**kwargs) -> None:
    _PACKAGE_IDS.clear()


post_migrate.connect(_forget_package_ids, dispatch_uid="uus.inventory.forget_package_ids")


def _remember(found: dict) -> None:
    if len(_PACKAGE_IDS) + len(found) > _PACKAGE_CACHE_LIMIT:
        _PACKAGE_IDS.clear()
    _PACKAGE_IDS.update(found)


def _lookup_packages(keys: list[tuple]) -> dict[tuple, int]:
    found: dict[tuple, int] = {}
    wanted = set(keys)
    for i in range(0, len(keys), _BATCH):
        part = keys[i : i + _BATCH]
        rows = Package.objects.filter(name__in={k[0] for k in part}, version__in={k[2] for k in part}).values_list(
            "id", "name", "architecture", "version", "source", "source_version"
        )
        for row in rows:
            if row[1:] in wanted:
                found[row[1:]] = row[0]
    return found


def package_ids(keys: Iterable[tuple[str, str, str, str, str]]) -> dict[tuple, int]:
    """Package ids for (name, architecture, version, source, source_version) keys, adding missing rows."""
    ids: dict[tuple, int] = {}
    missing = []
    for k in set(keys):
        pid = _PACKAGE_IDS.get(k)
        if pid is None:
            missing.append(k)
        else:
            ids[k] = pid
    if not missing:
        return ids
    found = _lookup_packages(missing)
    absent = [k for k in missing if k not in found]
    if absent:
        Package.objects.bulk_create(
            [
                Package(
                    name=k[0],
                    architecture=k[1],
                    version=k[2],
                    source=k[3],
                    source_version=k[4],
                    version_key=version_key(k[2]),
                    source_version_key=version_key(k[4]),
                )
                for k in absent
            ],
            ignore_conflicts=True,
            batch_size=_BATCH,
        )
        found.update(_lookup_packages(absent))
    transaction.on_commit(lambda: _remember(found))
    ids.update(found)
    return ids


def _members_insert(rows: list[tuple[int, int, int]]) -> None:
    """Insert (chunk_id, package_id, status) rows with one executemany: bulk_create builds a model
    instance per row, which was a third of a full upload's time when its chunks were new."""
    q = connection.ops.quote_name
    opts = PackageChunkMember._meta
    sql = f"INSERT INTO {q(opts.db_table)} ({q('chunk_id')}, {q('package_id')}, {q('status')}) VALUES (%s, %s, %s)"
    with connection.cursor() as cur:
        cur.executemany(sql, rows)


def _chunks_get_or_create(chunks: dict[str, list[pk.Entry]]) -> list[int]:
    """Ids of the chunks with these digests, creating the missing ones (content-addressed, so a chunk
    another transaction created meanwhile is the same chunk)."""
    existing = dict(PackageChunk.objects.filter(digest__in=list(chunks)).values_list("digest", "id"))
    missing = [d for d in chunks if d not in existing]
    if missing:
        ids = package_ids(e[:5] for d in missing for e in chunks[d])
        try:
            with transaction.atomic():
                made = PackageChunk.objects.bulk_create(
                    [PackageChunk(digest=d, size=len(chunks[d])) for d in missing], batch_size=_BATCH
                )
                if any(c.pk is None for c in made):  # a backend that cannot return ids
                    made = list(PackageChunk.objects.filter(digest__in=missing))
                _members_insert([(c.pk, ids[e[:5]], STATUS_CODES[e[5]]) for c in made for e in chunks[c.digest]])
                existing.update({c.digest: c.pk for c in made})
        except IntegrityError:  # another upload created some of them first: take theirs, make the rest
            for d in missing:
                try:
                    with transaction.atomic():
                        c = PackageChunk.objects.create(digest=d, size=len(chunks[d]))
                        _members_insert([(c.pk, ids[e[:5]], STATUS_CODES[e[5]]) for e in chunks[d]])
                except IntegrityError:
                    c = PackageChunk.objects.get(digest=d)
                existing[d] = c.pk
    return [existing[d] for d in chunks]


def package_set_get_or_create(*, inventory_hash: str, entries: list[pk.Entry]) -> PackageSet:
    """The set of these entries (sorted, hashing to `inventory_hash`), stored once for the fleet."""
    found = PackageSet.objects.filter(hash=inventory_hash).first()
    if found is not None:
        return found
    chunk_ids = _chunks_get_or_create(pk.split_chunks(entries))
    try:
        with transaction.atomic():
            made = PackageSet.objects.create(hash=inventory_hash, size=len(entries))
            PackageSetChunk.objects.bulk_create([PackageSetChunk(package_set=made, chunk_id=c) for c in chunk_ids])
    except IntegrityError:
        made = PackageSet.objects.get(hash=inventory_hash)
    return made


def package_set_entries(package_set_id: int) -> list[pk.Entry]:
    """The full inventory of a set, sorted by (name, architecture)."""
    chunk_ids = list(PackageSetChunk.objects.filter(package_set_id=package_set_id).values_list("chunk_id", flat=True))
    rows = PackageChunkMember.objects.filter(chunk_id__in=chunk_ids).values_list(
        "package__name",
        "package__architecture",
        "package__version",
        "package__source",
        "package__source_version",
        "status",
    )
    entries = [(n, a, v, s, sv, STATUS_NAMES[st]) for n, a, v, s, sv, st in rows]
    entries.sort(key=lambda e: (e[0], e[1]))
    return entries


class LazyPackageIds(AbstractSet):
    """A set of Package ids computed on first use (inside the transaction): receivers that do not
    look at them cost nothing (the exposure receiver evaluates whole sets)."""

    def __init__(self, load: Callable[[], AbstractSet[int]]):
        self._load_ids = load
        self._ids: AbstractSet[int] | None = None

    def _load(self) -> AbstractSet[int]:
        if self._ids is None:
            self._ids = frozenset(self._load_ids())
        return self._ids

    def __contains__(self, x) -> bool:
        return x in self._load()

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _machine_save(machine: Machine, fields: list[str], new_set: PackageSet | None, now) -> None:
    """Save `fields` of `machine`; with `new_set`, point it there too, add a history row (the first
    inventory of a machine is its baseline and makes none) and tell inventory_changed receivers
    (after the save, so they read the new state)."""
    old_set_id = machine.package_set_id
    machine.updated = now
    if new_set is None or new_set.pk == old_set_id:
        _machine_update(machine, fields)
        return
    if old_set_id:
        InventoryChange.objects.bulk_create(
            [InventoryChange(machine_id=machine.pk, time=now, old_set_id=old_set_id, new_set_id=new_set.pk)]
        )
        changed_ids = LazyPackageIds(lambda: package_sets_diff(old_set_id, new_set.pk).changed_package_ids)
    else:  # a first inventory changes all of its packages
        changed_ids = LazyPackageIds(lambda: package_set_package_ids(new_set.pk))
    machine.package_set = new_set
    machine.inventory_hash = new_set.hash
    machine.inventory_updated = now
    _machine_update(machine, [*fields, "package_set", "inventory_hash", "inventory_updated"])
    inventory_changed_send(machine, changed_ids)


@transaction.atomic
def inventory_apply_full(*, machine: Machine, inventory_hash: str, entries: list[pk.Entry]) -> Machine:
    """Store a machine's whole package list (validated, sorted entries) if it hashes to `inventory_hash`."""
    computed = pk.inventory_hash(entries)
    if computed != inventory_hash:
        raise HashMismatch(
            "the packages sent do not hash to inventory_hash: the agent must recompute it",
            details={"inventory_hash": inventory_hash, "computed": computed},
        )
    now = timezone.now()
    new_set = None
    if not (machine.package_set_id and machine.inventory_hash == computed):
        new_set = package_set_get_or_create(inventory_hash=computed, entries=entries)
    machine.last_seen = now
    _machine_save(machine, ["last_seen", "updated"], new_set, now)
    return machine


class DeltaHashMismatch(HashMismatch):
    """409 so that the agent answers with its full inventory at once (protocol/v1, Inventory)."""

    status = 409


@transaction.atomic
def inventory_apply_delta(
    *, machine: Machine, inventory_hash: str, base_hash: str, added: list[pk.Entry], removed: list[tuple[str, str]]
) -> Machine:
    """Apply a change relative to `base_hash` (the machine's stored inventory, or another the server
    knows); the result must hash to `inventory_hash`."""
    if machine.package_set_id and base_hash == machine.inventory_hash:
        base_set_id = machine.package_set_id
    else:
        base_set_id = PackageSet.objects.filter(hash=base_hash).values_list("id", flat=True).first()
    if base_set_id is None:
        raise BaseMismatch(
            "base_hash is not this machine's current inventory; send the full inventory",
            details={"base_hash": base_hash, "known_hash": machine.inventory_hash or None},
        )
    entries = pk.apply_delta(package_set_entries(base_set_id), added, removed)
    computed = pk.inventory_hash(entries)
    if computed != inventory_hash:
        raise DeltaHashMismatch(
            "the delta applied to base_hash does not give inventory_hash; send the full inventory",
            details={"inventory_hash": inventory_hash, "computed": computed},
        )
    return inventory_apply_full(machine=machine, inventory_hash=computed, entries=entries)


# -- garbage collection -------------------------------------------------------------------------------


def inventory_history_prune(*, older_than: timedelta | None = None) -> int:
    """Forget package history older than `inventory_history_days` (or `older_than`)."""
    if older_than is None:
        older_than = timedelta(days=settings.UUS["inventory_history_days"])
    n, _ = InventoryChange.objects.filter(time__lt=timezone.now() - older_than).delete()
    return n


def _unused_sets() -> QuerySet[PackageSet]:
    """Sets that no machine points at and no history row names."""
    return (
        PackageSet.objects.filter(machines__isnull=True)
        .exclude(Exists(InventoryChange.objects.filter(old_set=OuterRef("pk"))))
        .exclude(Exists(InventoryChange.objects.filter(new_set=OuterRef("pk"))))
    )


def package_sets_collect(*, batch: int = 500, grace: timedelta = PACKAGE_SET_GRACE) -> dict[str, int]:
    """Forget expired history, delete package sets that no machine points at and no remaining history
    names, then chunks no set uses (all older than `grace`).

    Each batch is its own transaction. A set or chunk that an upload adopts at the same moment is
    protected by the foreign keys: one of the two transactions fails and is simply retried later.
    """
    history = inventory_history_prune()
    cutoff = timezone.now() - grace
    sets = chunks = 0
    while True:
        ids = list(_unused_sets().filter(created__lt=cutoff).values_list("id", flat=True)[:batch])
        if not ids:
            break
        try:
            with transaction.atomic():
                PackageSetChunk.objects.filter(package_set_id__in=ids).delete()
                _unused_sets().filter(id__in=ids).delete()
                sets += len(ids)
        except IntegrityError:
            log.info("a package set was adopted while being collected; it is kept")
            break
    while True:
        ids = list(
            PackageChunk.objects.filter(set_chunks__isnull=True, created__lt=cutoff).values_list("id", flat=True)[
                :batch
            ]
        )
        if not ids:
            break
        try:
            with transaction.atomic():
                PackageChunkMember.objects.filter(chunk_id__in=ids).delete()
                PackageChunk.objects.filter(id__in=ids, set_chunks__isnull=True).delete()
                chunks += len(ids)
        except IntegrityError:
            log.info("a package chunk was adopted while being collected; it is kept")
            break
    return {"history": history, "sets": sets, "chunks": chunks}
