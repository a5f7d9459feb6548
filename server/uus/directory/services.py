"""Writes of the directory app: directory sources, role mappings, sync, and directory logins.

Sync (``directory_sync``) reads the whole directory first, outside any transaction; only when that
read succeeded does it compute the changes and write them in one transaction. A directory that is
down, refuses the bind, fails TLS or returns nothing where it used to return a tree therefore leaves
the last good state in place, and the error is recorded on the source. ``dry_run=True`` computes the
same changes and returns them without writing anything.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from uus.accounts.choices import ROLE_RANK, Role
from uus.accounts.models import User

from . import ldapclient
from .exceptions import (
    DirectorySecretMissing,
    DirectorySourceExists,
    DirectorySourceInvalid,
    DirectorySyncFailed,
)
from .models import (
    DirectoryAccount,
    DirectoryComputer,
    DirectoryGroup,
    DirectorySource,
    MachinePlacement,
    OrganizationalUnit,
    RoleMapping,
)
from .secret_store import secret_delete, secret_delete_on_commit, secret_write
from .selectors import directory_config

log = logging.getLogger(__name__)

#: Settings a source accepts besides the connection itself, with their validators (below).
OPTION_FIELDS = (
    "ou_filter",
    "computer_filter",
    "user_filter",
    "group_filter",
    "hostname_attributes",
    "login_attributes",
    "member_attributes",
    "page_size",
    "timeout_seconds",
    "is_enabled",
    "is_login_enabled",
    "is_plaintext_login_allowed",
    "sync_interval_minutes",
)
_ATTRIBUTE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$")
_RESERVED_NAMES = {"add", "ous"}  # /directory/add/ and /directory/ous/
_EXAMPLES = 100  # names listed per kind of change in a sync result; counts are always complete
_WARNINGS_KEPT = 200


# =============================================================================================
# Validation
# =============================================================================================
def _invalid(message: str, field_name: str) -> DirectorySourceInvalid:
    return DirectorySourceInvalid(message, details={field_name: [message]})


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    try:
        validate_slug(name)
    except Exception:
        raise _invalid(f"invalid directory name {name!r}: use letters, digits, '-' and '_'", "name") from None
    if len(name) > 64:
        raise _invalid("a directory name has at most 64 characters", "name")
    if name in _RESERVED_NAMES:
        raise _invalid(f"'{name}' is reserved (a page of the directory UI); choose another name", "name")
    return name


def _clean_url(url: str, start_tls: bool) -> str:
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise _invalid(f"invalid directory URL {url!r}: {exc}", "url") from None
    if parts.scheme.lower() not in ("ldap", "ldaps"):
        raise _invalid(f"invalid directory URL {url!r}: use ldap://HOST[:PORT] or ldaps://HOST[:PORT]", "url")
    if not parts.hostname:
        raise _invalid(f"invalid directory URL {url!r}: no host", "url")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
        raise _invalid(f"invalid directory URL {url!r}: give only scheme, host and port", "url")
    if start_tls and parts.scheme.lower() == "ldaps":
        raise _invalid("StartTLS cannot be combined with ldaps:// (which is TLS already)", "start_tls")
    return url.rstrip("/")


def _clean_dn(value: str, field_name: str, *, required: bool) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise _invalid(f"{field_name.replace('_', ' ')} is required", field_name)
        return ""
    try:
        return ldapclient.normalize_dn(value)
    except ldapclient.DirectoryConfigError as exc:
        raise _invalid(f"{field_name.replace('_', ' ')}: {exc}", field_name) from None


def _clean_filter(value: str, field_name: str) -> str:
    value = (value or "").strip()
    depth = 0
    for c in value:
        depth += (c == "(") - (c == ")")
        if depth < 0:
            break
    if not value.startswith("(") or not value.endswith(")") or depth != 0:
        raise _invalid(
            f"{field_name.replace('_', ' ')} {value!r} is not an LDAP filter like (objectClass=x)", field_name
        )
    return value


def _clean_attributes(values, field_name: str) -> list[str]:
    if isinstance(values, str):
        values = [v for v in re.split(r"[\s,]+", values) if v]
    values = [str(v).strip() for v in (values or []) if str(v).strip()]
    if not values:
        raise _invalid(f"{field_name.replace('_', ' ')}: give at least one attribute", field_name)
    bad = [v for v in values if not _ATTRIBUTE.match(v)]
    if bad:
        raise _invalid(f"{field_name.replace('_', ' ')}: {', '.join(bad)} is not an attribute name", field_name)
    return values


def _clean_ca(pem: str) -> str:
    pem = (pem or "").strip()
    if not pem:
        return ""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise _invalid("the CA certificate must be PEM (-----BEGIN CERTIFICATE-----)", "ca_certificate")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise _invalid(f"the CA certificate cannot be used: {exc}", "ca_certificate") from None
    return pem + "\n"


def _clean_int(value, field_name: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"{field_name.replace('_', ' ')} must be a whole number", field_name) from None
    if not low <= n <= high:
        raise _invalid(f"{field_name.replace('_', ' ')} must be between {low} and {high}", field_name)
    return n


def _clean_options(options: dict) -> dict:
    unknown = set(options) - set(OPTION_FIELDS)
    if unknown:
        raise DirectorySourceInvalid(f"unknown directory setting(s): {', '.join(sorted(unknown))}")
    out = {}
    for key, value in options.items():
        if value is None:
            continue
        if key.endswith("_filter"):
            out[key] = _clean_filter(value, key)
        elif key.endswith("_attributes"):
            out[key] = _clean_attributes(value, key)
        elif key == "page_size":
            out[key] = _clean_int(value, key, 1, 10000)
        elif key == "sync_interval_minutes":
            out[key] = _clean_int(value, key, 5, 7 * 24 * 60)
        elif key == "timeout_seconds":
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                raise _invalid("timeout seconds must be a number", key) from None
            if not 1 <= out[key] <= 300:
                raise _invalid("timeout seconds must be between 1 and 300", key)
        else:
            out[key] = bool(value)
    return out


# =============================================================================================
# Sources
# =============================================================================================
@sensitive_variables("bind_password")
def directory_source_create(
    *,
    name: str,
    url: str,
    base_dn: str,
    bind_dn: str = "",
    bind_password: str = "",
    start_tls: bool = False,
    ca_certificate: str = "",
    **options,
) -> DirectorySource:
    """Add a directory. With a bind DN a password is required (an empty one would make the bind an
    unauthenticated one); the password goes to a 0600 file, never into the database."""
    name = _clean_name(name)
    source = DirectorySource(
        name=name,
        url=_clean_url(url, start_tls),
        has_start_tls=bool(start_tls),
        base_dn=_clean_dn(base_dn, "base_dn", required=True),
        bind_dn=_clean_dn(bind_dn, "bind_dn", required=False),
        ca_certificate=_clean_ca(ca_certificate),
        **_clean_options(options),
    )
    if source.bind_dn and not bind_password:
        raise _invalid(f"a bind password is needed for {source.bind_dn}", "bind_password")
    if bind_password and not source.bind_dn:
        raise _invalid("a bind password was given without a bind DN", "bind_dn")
    if DirectorySource.objects.filter(name=name).exists():
        raise DirectorySourceExists(f"directory '{name}' already exists (change it with --replace or the API)")
    path = secret_write(bind_password) if bind_password else ""
    try:
        with transaction.atomic():
            source.bind_password_file = path
            source.save()
    except BaseException:
        secret_delete(path)
        raise
    log.info(
        "directory %s added: %s, base %s, bind as %s", name, source.url, source.base_dn, source.bind_dn or "anonymous"
    )
    return source


@sensitive_variables("bind_password")
def directory_source_update(*, source: DirectorySource, bind_password: str | None = None, **changes) -> DirectorySource:
    """Change settings of a directory. ``bind_password=None`` keeps the stored password."""
    if "name" in changes and changes["name"] != source.name:
        raise _invalid("a directory cannot be renamed; add a new one and remove this one", "name")
    changes.pop("name", None)
    start_tls = changes.pop("start_tls", None)
    if start_tls is not None:
        source.has_start_tls = bool(start_tls)
    if "url" in changes:
        source.url = changes.pop("url")
    source.url = _clean_url(source.url, source.has_start_tls)
    if "base_dn" in changes:
        source.base_dn = _clean_dn(changes.pop("base_dn"), "base_dn", required=True)
    if "bind_dn" in changes:
        source.bind_dn = _clean_dn(changes.pop("bind_dn"), "bind_dn", required=False)
    if "ca_certificate" in changes:
        source.ca_certificate = _clean_ca(changes.pop("ca_certificate"))
    for key, value in _clean_options(changes).items():
        setattr(source, key, value)
    old_path, new_path = source.bind_password_file, None
    if not source.bind_dn:
        if bind_password:
            raise _invalid("a bind password was given without a bind DN", "bind_dn")
        source.bind_password_file = ""
    elif bind_password:
        new_path = source.bind_password_file = secret_write(bind_password)
    elif not old_path:
        raise _invalid(f"a bind password is needed for {source.bind_dn}", "bind_password")
    try:
        with transaction.atomic():
            source.save()
            if old_path and old_path != source.bind_password_file:
                secret_delete_on_commit(old_path)
    except BaseException:
        if new_path:
            secret_delete(new_path)
        raise
    log.info("directory %s changed", source.name)
    return source


@transaction.atomic
def directory_source_delete(*, source: DirectorySource) -> None:
    """Remove a directory with its OUs, placements and role mappings. People who logged in through
    it keep their UUS account (the audit trail names them) but are deactivated."""
    User.objects.filter(directory_account__source=source).update(is_active=False)
    path = source.bind_password_file
    source.delete()
    if path:
        secret_delete_on_commit(path)
    log.info("directory %s removed", source.name)


def directory_source_test(*, source: DirectorySource) -> dict:
    """Connect, bind and find the base DN; ``{"ok": bool, "message": str}``, never raises for a
    directory problem, so that forms and the CLI can show the reason."""
    try:
        cfg = directory_config(source)
    except DirectorySecretMissing as exc:
        return {"ok": False, "message": exc.message}
    ok, message = ldapclient.test_connection(cfg)
    return {"ok": ok, "message": message}


# =============================================================================================
# Role mappings
# =============================================================================================
@transaction.atomic
def role_mapping_set(*, source: DirectorySource, group_dn: str, role: str, scope_ou_dn: str = "") -> RoleMapping:
    """Members of ``group_dn`` get ``role`` (limited to ``scope_ou_dn`` and below when given).
    Setting a mapping for a group that has one replaces it."""
    if role not in Role.values:
        raise _invalid(f"unknown role '{role}': use one of {', '.join(Role.values)}", "role")
    group_dn = _clean_dn(group_dn, "group_dn", required=True)
    scope_ou_dn = _clean_dn(scope_ou_dn, "scope_ou_dn", required=False)
    mapping, _ = RoleMapping.objects.update_or_create(
        source=source,
        group_dn_key=ldapclient.dn_key(group_dn),
        defaults={"group_dn": group_dn, "role": role, "scope_ou_dn": scope_ou_dn},
    )
    return mapping


@transaction.atomic
def role_mapping_update(
    *, mapping: RoleMapping, source: DirectorySource, group_dn: str, role: str, scope_ou_dn: str = ""
) -> RoleMapping:
    """Change a mapping; moving it to another group (or directory) replaces the old row."""
    updated = role_mapping_set(source=source, group_dn=group_dn, role=role, scope_ou_dn=scope_ou_dn)
    if updated.pk != mapping.pk:
        mapping.delete()
    return updated


@transaction.atomic
def role_mapping_delete(*, mapping: RoleMapping) -> None:
    mapping.delete()


def _role_for(groups: Iterable[str], mappings: list[RoleMapping]) -> tuple[str | None, list[str]]:
    """(role, scope OU DNs) for someone in ``groups``: the highest mapped role wins; the scope is
    the union of the scopes of the mappings giving that role, or none if one of them is unscoped."""
    keys = set()
    for g in groups:
        try:
            keys.add(ldapclient.dn_key(g))
        except ldapclient.DirectoryConfigError:
            continue
    matched = [m for m in mappings if m.group_dn_key in keys]
    if not matched:
        return None, []
    best = max(ROLE_RANK[m.role] for m in matched)
    winners = [m for m in matched if ROLE_RANK[m.role] == best]
    if any(not m.scope_ou_dn for m in winners):
        return winners[0].role, []
    return winners[0].role, sorted({m.scope_ou_dn for m in winners}, key=ldapclient.dn_key)


# =============================================================================================
# Login
# =============================================================================================
@sensitive_variables("password")
def directory_login(*, source: DirectorySource, login: str, password: str) -> User | None:
    """Check ``login``/``password`` against the directory (simple bind as the person) and return the
    local User, created or updated with the role of their groups; None if refused.

    Refused: empty passwords, sources without role mappings, people in no mapped group, logins
    over an unencrypted connection (unless the source explicitly allows it), a login that is a local
    account or belongs to another directory, and users an administrator deactivated in UUS.
    Directory outages raise :class:`ldapclient.DirectoryError` (so they are not taken for a wrong
    password by the caller's logging)."""
    login = (login or "").strip()
    if not login or not password:
        return None
    if not source.is_tls and not source.is_plaintext_login_allowed:
        log.warning(
            "directory %s: login of %r refused: %s is not encrypted (use ldaps:// or StartTLS)",
            source.name,
            login,
            source.url,
        )
        return None
    mappings = list(source.role_mappings.all())
    if not mappings:
        return None
    person = ldapclient.authenticate(directory_config(source), login, password)
    if person is None:
        return None
    role, scope = _role_for(person.groups, mappings)
    if role is None:
        log.info("directory %s: %s is in no group mapped to a UUS role; login refused", source.name, person.login)
        return None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username__iexact=person.login).first()
        if user is not None and user.source != source.name:
            log.warning(
                "directory %s: login %r refused: the UUS account of that name belongs to %s",
                source.name,
                person.login,
                "the local accounts" if user.source == "local" else f"directory {user.source}",
            )
            return None
        account = DirectoryAccount.objects.filter(user=user).first() if user is not None else None
        if user is not None and not user.is_active and not (account and account.is_suspended):
            log.info("directory %s: %s was deactivated in UUS; login refused", source.name, person.login)
            return None
        if user is None:
            user = User(username=person.login, source=source.name)
            user.set_unusable_password()
        user.role = role
        user.is_staff = role == Role.ADMIN
        user.is_active = True
        user.email = person.mail or ""
        user.first_name = person.display_name[:150]
        user.save()
        DirectoryAccount.objects.update_or_create(
            user=user,
            defaults={
                "source": source,
                "dn": person.dn,
                "groups": list(person.groups),
                "scope_ou_dns": scope,
                "is_suspended": False,
                "last_checked": timezone.now(),
            },
        )
    log.info("directory %s: %s logged in as %s%s", source.name, user.username, role, f" in {scope}" if scope else "")
    return user


# =============================================================================================
# Sync
# =============================================================================================
class _Progress:
    """Progress through the phases of a sync, reported to a job context when there is one."""

    PHASES = 7

    def __init__(self, ctx):
        self.ctx = ctx
        if ctx is not None:
            ctx.set_total(self.PHASES)

    def step(self, message: str) -> None:
        if self.ctx is not None:
            self.ctx.log(message)
            self.ctx.advance()
            self.ctx.check_cancel()

    def finish(self, message: str) -> None:
        if self.ctx is not None:
            self.ctx.log(message)
            self.ctx.set_done(self.PHASES)


def _change(total: int, added: list[str], removed: list[str], changed: list[str]) -> dict:
    return {
        "total": total,
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "examples": {
            "added": sorted(added)[:_EXAMPLES],
            "removed": sorted(removed)[:_EXAMPLES],
            "changed": sorted(changed)[:_EXAMPLES],
        },
    }


@dataclass
class _Plan:
    """What a sync will write, computed from a snapshot and the stored state."""

    source: DirectorySource
    snap: ldapclient.DirectorySnapshot
    ous: dict[str, dict] = field(default_factory=dict)  # key -> desired values
    ou_existing: dict[str, OrganizationalUnit] = field(default_factory=dict)
    computers: dict[str, dict] = field(default_factory=dict)  # key -> desired values
    computer_existing: dict[str, tuple] = field(default_factory=dict)  # key -> (id, dn, host, fqdn, ou_id, mid)
    groups: dict[str, dict] = field(default_factory=dict)
    group_existing: dict[str, tuple] = field(default_factory=dict)
    placements: dict[tuple[str, int], tuple[str, bool]] = field(default_factory=dict)  # (ou key, mid) -> (ck, direct)
    placement_existing: dict[tuple[str, int], tuple[int, str, bool]] = field(default_factory=dict)
    matched_machines: set[int] = field(default_factory=set)
    unmatched_machines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)  # per account: the row, its new role and scope
    machine_names: dict[int, str] = field(default_factory=dict)

    # ------------------------------------------------------------------------------ diff helpers
    def ou_diff(self) -> tuple[list[str], list[str], list[str]]:
        existing = self.ou_existing
        added = [k for k in self.ous if k not in existing]
        removed = [k for k in existing if k not in self.ous]
        parent_key = {o.pk: k for k, o in existing.items()}
        changed = []
        for k, want in self.ous.items():
            have = existing.get(k)
            if have is None:
                continue
            if (
                have.dn != want["dn"]
                or have.name != want["name"]
                or have.depth != want["depth"]
                or have.sort_key != want["sort_key"]
                or have.computer_count != want["computer_count"]
                or parent_key.get(have.parent_id) != want["parent_key"]
            ):
                changed.append(k)
        return added, removed, changed

    def computer_diff(self, ou_ids: dict[str, int] | None = None) -> tuple[list[str], list[str], list[str]]:
        existing = self.computer_existing
        added = [k for k in self.computers if k not in existing]
        removed = [k for k in existing if k not in self.computers]
        ou_key_of = {o.pk: k for k, o in self.ou_existing.items()}
        changed = []
        for k, want in self.computers.items():
            have = existing.get(k)
            if have is None:
                continue
            _id, dn, host, fqdn, ou_id, machine_id = have
            have_ou = ou_key_of.get(ou_id) if ou_ids is None else ou_id
            want_ou = want["ou_key"] if ou_ids is None else ou_ids.get(want["ou_key"])
            if (dn, host, fqdn, have_ou, machine_id) != (
                want["dn"],
                want["hostname"],
                want["fqdn"],
                want_ou,
                want["machine_id"],
            ):
                changed.append(k)
        return added, removed, changed

    def group_diff(self) -> tuple[list[str], list[str], list[str]]:
        existing = self.group_existing
        added = [k for k in self.groups if k not in existing]
        removed = [k for k in existing if k not in self.groups]
        changed = [
            k
            for k, want in self.groups.items()
            if k in existing and existing[k][1:] != (want["dn"], want["name"], want["member_count"])
        ]
        return added, removed, changed

    def placement_diff(self) -> tuple[list, list, list]:
        added = [p for p in self.placements if p not in self.placement_existing]
        removed = [p for p in self.placement_existing if p not in self.placements]
        changed = [
            p
            for p, (ck, direct) in self.placements.items()
            if p in self.placement_existing and self.placement_existing[p][1:] != (ck, direct)
        ]
        return added, removed, changed

    # ------------------------------------------------------------------------------- summary
    def summary(self, *, dry_run: bool) -> dict:
        ou_a, ou_r, ou_c = self.ou_diff()
        c_a, c_r, c_c = self.computer_diff()
        g_a, g_r, g_c = self.group_diff()
        p_a, p_r, p_c = self.placement_diff()
        dn_of_ou = {**{k: o.dn for k, o in self.ou_existing.items()}, **{k: v["dn"] for k, v in self.ous.items()}}
        dn_of_c = {
            **{k: v[1] for k, v in self.computer_existing.items()},
            **{k: v["dn"] for k, v in self.computers.items()},
        }
        dn_of_g = {**{k: v[1] for k, v in self.group_existing.items()}, **{k: v["dn"] for k, v in self.groups.items()}}
        host = self.machine_names
        moved = sorted({host.get(mid, str(mid)) for _ok, mid in (*p_a, *p_r)})
        return {
            "source": self.source.name,
            "dry_run": dry_run,
            "ous": _change(
                len(self.ous), [dn_of_ou[k] for k in ou_a], [dn_of_ou[k] for k in ou_r], [dn_of_ou[k] for k in ou_c]
            ),
            "computers": _change(
                len(self.computers), [dn_of_c[k] for k in c_a], [dn_of_c[k] for k in c_r], [dn_of_c[k] for k in c_c]
            ),
            "groups": _change(
                len(self.groups), [dn_of_g[k] for k in g_a], [dn_of_g[k] for k in g_r], [dn_of_g[k] for k in g_c]
            ),
            "users": len(self.snap.users),
            "placements": {"total": len(self.placements), "added": len(p_a), "removed": len(p_r), "changed": len(p_c)},
            "machines": {
                "matched": len(self.matched_machines),
                "unmatched": len(self.unmatched_machines),
                "unmatched_examples": self.unmatched_machines[:_EXAMPLES],
                "placement_changed": len(moved),
                "placement_changed_examples": moved[:_EXAMPLES],
            },
            "computers_without_machine": sum(1 for c in self.computers.values() if c["machine_id"] is None),
            "accounts": {
                "checked": len(self.accounts),
                "suspended": sorted(a["username"] for a in self.accounts if a["suspend"] and not a["was_suspended"]),
                "role_changed": sorted(
                    f"{a['username']}: {a['old_role']} -> {a['role']}"
                    for a in self.accounts
                    if a["role"] and a["role"] != a["old_role"]
                ),
            },
            "warnings": len(self.warnings),
            "warning_examples": self.warnings[:_EXAMPLES],
        }


def _nearest_ou(container: str | None, ou_keys: set[str], base_key: str, memo: dict) -> str | None:
    """Key of the nearest OU read at or above ``container`` (a computer's parent DN), or None."""
    chain = []
    found = None
    dn = container
    while dn:
        if dn in memo:
            found = memo[dn]
            break
        chain.append(dn)
        key = ldapclient.dn_key(dn)
        if key in ou_keys:
            found = key
            break
        if key == base_key:
            break
        dn = ldapclient.parent_dn(dn)
    for d in chain:
        memo[d] = found
    return found


def _short(name: str) -> str:
    return name.strip().rstrip(".").lower().split(".")[0]


def _plan(source: DirectorySource, snap: ldapclient.DirectorySnapshot) -> _Plan:
    from uus.inventory.models import Machine

    plan = _Plan(source=source, snap=snap)
    plan.warnings = [str(w) for w in snap.warnings]

    # --- OUs: desired rows, with parents, depth and a tree sort key
    snap_ous = {ldapclient.dn_key(o.dn): o for o in snap.ous}
    ou_keys = set(snap_ous)
    for key, ou in snap_ous.items():
        parent_key = ldapclient.dn_key(ou.parent_dn) if ou.parent_dn else None
        plan.ous[key] = {"dn": ou.dn, "name": ou.name[:255], "parent_key": parent_key}
    for key, want in plan.ous.items():  # depth and sort key through the parent chain
        chain, k = [], key
        while k is not None and len(chain) < 64:
            chain.append(plan.ous[k]["name"].casefold())
            k = plan.ous[k]["parent_key"]
        want["depth"] = len(chain) - 1
        want["sort_key"] = "\x1f".join(reversed(chain))[:1024]
    members = snap.ou_members()
    for key, ou in snap_ous.items():
        plan.ous[key]["computer_count"] = len(members.get(ou.dn, ()))
    plan.ou_existing = {o.dn_key: o for o in OrganizationalUnit.objects.filter(source=source)}

    # --- machines by name
    by_fqdn: dict[str, list[int]] = defaultdict(list)
    by_short: dict[str, list[int]] = defaultdict(list)
    machine_fqdn: dict[int, str] = {}
    for mid, hostname, fqdn in Machine.objects.values_list("id", "hostname", "fqdn"):
        hostname, fqdn = (hostname or "").strip().rstrip(".").lower(), (fqdn or "").strip().rstrip(".").lower()
        plan.machine_names[mid] = hostname or fqdn or str(mid)
        full = fqdn if "." in fqdn else (hostname if "." in hostname else "")
        machine_fqdn[mid] = full
        if full:
            by_fqdn[full].append(mid)
        for short in {_short(hostname), _short(fqdn)} - {""}:
            by_short[short].append(mid)

    # --- computers: nearest OU and the machine they are
    base_key = ldapclient.dn_key(snap.base_dn)
    memo: dict[str, str | None] = {}
    computer_machines: dict[str, list[int]] = {}
    for c in snap.computers:
        key = ldapclient.dn_key(c.dn)
        ou_key = _nearest_ou(c.ou_dn, ou_keys, base_key, memo)
        fqdn = (c.fqdn or "").lower()
        mids = list(by_fqdn.get(fqdn, ())) if fqdn else []
        if not mids:
            mids = [
                m for m in by_short.get(c.hostname, ()) if not (fqdn and machine_fqdn[m] and machine_fqdn[m] != fqdn)
            ]
            if len(mids) > 1:
                names = ", ".join(sorted(plan.machine_names[m] for m in mids))
                plan.warnings.append(f"{c.dn}: host name {c.hostname} matches several machines ({names}); none placed")
                mids = []
        computer_machines[key] = mids
        plan.computers[key] = {
            "dn": c.dn,
            "hostname": c.hostname[:253],
            "fqdn": fqdn[:253],
            "ou_key": ou_key,
            "machine_id": mids[0] if mids else None,
        }
    plan.computer_existing = {
        row[1]: (row[0], *row[2:])
        for row in DirectoryComputer.objects.filter(source=source).values_list(
            "id", "dn_key", "dn", "hostname", "fqdn", "ou_id", "machine_id"
        )
    }
    # A computer object still in the directory but now unreadable (its host name attribute was
    # emptied or garbled) keeps what the last good sync read, rather than dropping its machine out
    # of its OUs; the warning tells the admin. Removed entries (no warning) are removed.
    for w in snap.warnings:
        try:
            key = ldapclient.dn_key(w.dn)
        except ldapclient.DirectoryConfigError:  # a DN the server sent garbled: nothing to keep by it
            continue
        old = plan.computer_existing.get(key)
        if old is None or key in plan.computers:
            continue
        _id, dn, hostname, fqdn, _ou_id, mid = old
        computer_machines[key] = [mid] if mid is not None and mid in plan.machine_names else []
        plan.computers[key] = {
            "dn": dn,
            "hostname": hostname,
            "fqdn": fqdn,
            "ou_key": _nearest_ou(ldapclient.parent_dn(dn), ou_keys, base_key, memo),
            "machine_id": computer_machines[key][0] if computer_machines[key] else None,
        }
        plan.warnings.append(f"{dn}: kept as last read (host name {hostname}) until the entry is readable again")

    # --- placements: a machine is in every OU above each computer object it matched
    ou_chain_memo: dict[str, list[str]] = {}

    def chain_of(ou_key: str) -> list[str]:
        if ou_key not in ou_chain_memo:
            chain, k = [], ou_key
            while k is not None and len(chain) < 64:
                chain.append(k)
                k = plan.ous[k]["parent_key"]
            ou_chain_memo[ou_key] = chain
        return ou_chain_memo[ou_key]

    for ck in sorted(computer_machines):
        ou_key = plan.computers[ck]["ou_key"]
        for mid in computer_machines[ck]:
            plan.matched_machines.add(mid)
            if ou_key is None:
                continue
            for i, k in enumerate(chain_of(ou_key)):
                prev = plan.placements.get((k, mid))
                if prev is None or (i == 0 and not prev[1]):
                    plan.placements[(k, mid)] = (ck, i == 0)
    existing_ou_key = {o.pk: k for k, o in plan.ou_existing.items()}
    existing_computer_key = {v[0]: k for k, v in plan.computer_existing.items()}
    for ou_id, mid, computer_id, is_direct in MachinePlacement.objects.filter(ou__source=source).values_list(
        "ou_id", "machine_id", "computer_id", "is_direct"
    ):
        plan.placement_existing[(existing_ou_key[ou_id], mid)] = (
            ou_id,
            existing_computer_key.get(computer_id, ""),
            is_direct,
        )
    plan.unmatched_machines = sorted(
        plan.machine_names[m] for m in plan.machine_names if m not in plan.matched_machines
    )

    # --- groups
    for g in snap.groups:
        plan.groups[ldapclient.dn_key(g.dn)] = {"dn": g.dn, "name": g.name[:255], "member_count": len(g.members)}
    plan.group_existing = {
        row[1]: (row[0], *row[2:])
        for row in DirectoryGroup.objects.filter(source=source).values_list(
            "id", "dn_key", "dn", "name", "member_count"
        )
    }

    # --- people who log in through this directory: their role as the directory now says
    accounts = list(DirectoryAccount.objects.filter(source=source).select_related("user"))
    if accounts and not snap.users:
        plan.warnings.append("the directory returned no users; accounts of people are left as they are")
    elif accounts:
        people = {ldapclient.dn_key(u.dn): u for u in snap.users}
        mappings = list(source.role_mappings.all())
        for account in accounts:
            person = people.get(ldapclient.dn_key(account.dn))
            role, scope = _role_for(person.groups, mappings) if person else (None, [])
            plan.accounts.append(
                {
                    "account": account,
                    "username": account.user.username,
                    "old_role": account.user.role,
                    "role": role,
                    "scope": scope,
                    "groups": list(person.groups) if person else list(account.groups),
                    "suspend": role is None,
                    "was_suspended": account.is_suspended,
                }
            )
    return plan


def _record_error(source: DirectorySource, message: str) -> None:
    DirectorySource.objects.filter(pk=source.pk).update(
        last_error=message[:4000], last_error_at=timezone.now(), updated=timezone.now()
    )
    source.refresh_from_db()


def directory_sync(*, source: DirectorySource, dry_run: bool = False, allow_empty: bool = False, ctx=None) -> dict:
    """Read the directory and store its OU tree, computers, groups and where each machine sits.

    Returns what changed (or, with ``dry_run``, what would change) as a JSON-able dict. Raises
    :class:`DirectorySyncFailed` when the directory cannot be read; the stored state is then
    untouched and the error is recorded on the source (except in a dry run, which writes nothing).
    """
    try:
        return _directory_sync(source, dry_run=dry_run, allow_empty=allow_empty, ctx=ctx)
    finally:
        ldapclient.dn_caches_clear()  # the worker lives on: do not keep a large directory's DNs


def _directory_sync(source: DirectorySource, *, dry_run: bool, allow_empty: bool, ctx) -> dict:
    progress = _Progress(ctx)
    if not dry_run:
        DirectorySource.objects.filter(pk=source.pk).update(last_sync_started=timezone.now())
    try:
        cfg = directory_config(source)
        snap = ldapclient.read_directory(cfg)
    except (ldapclient.DirectoryError, DirectorySecretMissing) as exc:
        message = str(exc)
        if not dry_run:
            _record_error(source, message)
        log.warning("directory %s: sync failed: %s", source.name, message)
        raise DirectorySyncFailed(f"directory {source.name}: {message}; the last good state is kept") from None
    progress.step(
        f"read {len(snap.ous)} OUs, {len(snap.computers)} computers, {len(snap.groups)} groups, "
        f"{len(snap.users)} users ({len(snap.warnings)} warnings)"
    )

    plan = _plan(source, snap)
    if not snap.ous and not snap.computers and not allow_empty and (plan.ou_existing or plan.computer_existing):
        message = (
            f"the directory returned no OUs and no computers under {snap.base_dn}, where the last sync found "
            f"{len(plan.ou_existing)} OUs and {len(plan.computer_existing)} computers (access rights or filters "
            "changed?); nothing was removed. If the directory really is empty now, sync with --allow-empty"
        )
        if not dry_run:
            _record_error(source, message)
        raise DirectorySyncFailed(f"directory {source.name}: {message}")
    progress.step(
        f"matched {len(plan.matched_machines)} machines; {len(plan.unmatched_machines)} have no directory object"
    )

    if dry_run:
        progress.finish("dry run: nothing was written")
        return plan.summary(dry_run=True)

    result = plan.summary(dry_run=False)
    with transaction.atomic():
        _apply(plan, progress)
    log.info(
        "directory %s synced: %d OUs, %d computers, %d machines placed, %d without a directory object",
        source.name,
        len(plan.ous),
        len(plan.computers),
        len(plan.matched_machines),
        len(plan.unmatched_machines),
    )
    return result


def _apply(plan: _Plan, progress: _Progress) -> None:
    """Write a plan. Order matters: new OUs and computers first, then placements move onto them,
    and only then are removed computers and OUs deleted, so that no cascade takes a row still wanted."""
    source, now = plan.source, timezone.now()

    # --- OUs: create, then set every field and parent (deleted at the end)
    ou_added, ou_removed, ou_changed = plan.ou_diff()
    OrganizationalUnit.objects.bulk_create(
        [
            OrganizationalUnit(
                source=source,
                dn=plan.ous[k]["dn"],
                dn_key=k,
                name=plan.ous[k]["name"],
                depth=plan.ous[k]["depth"],
                sort_key=plan.ous[k]["sort_key"],
                computer_count=plan.ous[k]["computer_count"],
            )
            for k in ou_added
        ],
        batch_size=1000,
    )
    ou_ids = dict(OrganizationalUnit.objects.filter(source=source).values_list("dn_key", "id"))
    OrganizationalUnit.objects.bulk_update(
        [
            OrganizationalUnit(
                pk=ou_ids[k],
                dn=plan.ous[k]["dn"],
                name=plan.ous[k]["name"],
                depth=plan.ous[k]["depth"],
                sort_key=plan.ous[k]["sort_key"],
                computer_count=plan.ous[k]["computer_count"],
                parent_id=ou_ids[plan.ous[k]["parent_key"]] if plan.ous[k]["parent_key"] else None,
                updated=now,
            )
            for k in (*ou_added, *ou_changed)
        ],
        ["dn", "name", "depth", "sort_key", "computer_count", "parent", "updated"],
        batch_size=500,
    )
    progress.step(f"OUs: {len(ou_added)} added, {len(ou_changed)} changed, {len(ou_removed)} removed")

    # --- computers: create and update (deleted at the end)
    c_added, c_removed, c_changed = plan.computer_diff(ou_ids)

    def computer(k: str, **kw) -> DirectoryComputer:
        want = plan.computers[k]
        return DirectoryComputer(
            dn=want["dn"],
            hostname=want["hostname"],
            fqdn=want["fqdn"],
            ou_id=ou_ids.get(want["ou_key"]) if want["ou_key"] else None,
            machine_id=want["machine_id"],
            **kw,
        )

    DirectoryComputer.objects.bulk_create([computer(k, source=source, dn_key=k) for k in c_added], batch_size=2000)
    DirectoryComputer.objects.bulk_update(
        [computer(k, pk=plan.computer_existing[k][0], updated=now) for k in c_changed],
        ["dn", "hostname", "fqdn", "ou", "machine", "updated"],
        batch_size=500,
    )
    progress.step(f"computers: {len(c_added)} added, {len(c_changed)} changed, {len(c_removed)} removed")

    # --- placements
    computer_ids = dict(DirectoryComputer.objects.filter(source=source).values_list("dn_key", "id"))
    p_added, p_removed, p_changed = plan.placement_diff()
    gone: dict[int, list[int]] = defaultdict(list)
    for p in p_removed:
        gone[plan.placement_existing[p][0]].append(p[1])
    for ou_id, mids in gone.items():
        for i in range(0, len(mids), 500):
            MachinePlacement.objects.filter(ou_id=ou_id, machine_id__in=mids[i : i + 500]).delete()
    moved: dict[tuple[int, int, bool], list[int]] = defaultdict(list)
    for p in p_changed:
        ck, direct = plan.placements[p]
        moved[(ou_ids[p[0]], computer_ids[ck], direct)].append(p[1])
    for (ou_id, computer_id, direct), mids in moved.items():
        for i in range(0, len(mids), 500):
            MachinePlacement.objects.filter(ou_id=ou_id, machine_id__in=mids[i : i + 500]).update(
                computer_id=computer_id, is_direct=direct
            )
    MachinePlacement.objects.bulk_create(
        [
            MachinePlacement(
                ou_id=ou_ids[p[0]],
                machine_id=p[1],
                computer_id=computer_ids[plan.placements[p][0]],
                is_direct=plan.placements[p][1],
            )
            for p in p_added
        ],
        batch_size=2000,
    )
    progress.step(f"placements: {len(p_added)} added, {len(p_changed)} changed, {len(p_removed)} removed")

    # --- what the directory no longer has
    removed_ids = [plan.computer_existing[k][0] for k in c_removed]
    for i in range(0, len(removed_ids), 500):
        DirectoryComputer.objects.filter(pk__in=removed_ids[i : i + 500]).delete()
    removed_ous = [plan.ou_existing[k].pk for k in ou_removed]
    for i in range(0, len(removed_ous), 500):
        OrganizationalUnit.objects.filter(pk__in=removed_ous[i : i + 500]).delete()

    # --- groups
    g_added, g_removed, g_changed = plan.group_diff()
    DirectoryGroup.objects.bulk_create(
        [DirectoryGroup(source=source, dn_key=k, **plan.groups[k]) for k in g_added], batch_size=1000
    )
    DirectoryGroup.objects.bulk_update(
        [DirectoryGroup(pk=plan.group_existing[k][0], updated=now, **plan.groups[k]) for k in g_changed],
        ["dn", "name", "member_count", "updated"],
        batch_size=500,
    )
    removed_groups = [plan.group_existing[k][0] for k in g_removed]
    for i in range(0, len(removed_groups), 500):
        DirectoryGroup.objects.filter(pk__in=removed_groups[i : i + 500]).delete()
    progress.step(f"groups: {len(g_added)} added, {len(g_changed)} changed, {len(g_removed)} removed")

    # --- people: role re-evaluated; gone or unmapped ones suspended (inactive: their tokens stop too)
    for a in plan.accounts:
        account, user = a["account"], a["account"].user
        if a["suspend"]:
            if user.is_active:  # an administrator's own deactivation is left alone (not "suspended")
                user.is_active, account.is_suspended = False, True
                user.save(update_fields=["is_active"])
        else:
            user.role = a["role"]
            user.is_staff = a["role"] == Role.ADMIN
            if account.is_suspended:
                user.is_active, account.is_suspended = True, False
            user.save(update_fields=["role", "is_staff", "is_active"])
            account.scope_ou_dns = a["scope"]
        account.groups = a["groups"]
        account.last_checked = now
        account.save(update_fields=["is_suspended", "scope_ou_dns", "groups", "last_checked", "updated"])
    progress.step(f"accounts: {len(plan.accounts)} checked")

    DirectorySource.objects.filter(pk=source.pk).update(
        last_success=now,
        last_error="",
        last_error_at=None,
        last_counts={
            "ous": len(plan.ous),
            "computers": len(plan.computers),
            "groups": len(plan.groups),
            "users": len(plan.snap.users),
            "machines_matched": len(plan.matched_machines),
            "machines_unmatched": len(plan.unmatched_machines),
            "computers_without_machine": sum(1 for c in plan.computers.values() if c["machine_id"] is None),
            "warnings": len(plan.warnings),
        },
        last_warnings=plan.warnings[:_WARNINGS_KEPT],
        updated=now,
    )
