"""Reads of the directory app: sources, the OU tree, machines by OU, and OU scopes of people.

What other apps call (plain functions; each takes the user or DN and returns querysets or a bool):

* ``machines_in_ou(dn, queryset=None)`` -> Machine queryset: machines in the OU ``dn`` (any spelling of
  the DN) *and every OU below it*; raises ``OrganizationalUnitNotFound`` for an OU no directory has.
  Used by the machine list (``--ou DN``) and by deployments and approvals targeting ``ou:DN``.
* ``user_machine_scope(user)`` -> Machine queryset or None: the machines ``user`` may act on (approve,
  deploy, change); None means unrestricted (local accounts, superusers, directory users with an
  unscoped mapping). Anonymous and inactive users get an empty queryset.
* ``user_may_act_on(user, machines)`` -> bool: every machine given (Machine objects, ids, or a
  queryset) is in the user's scope. Whether the user's *role* allows the action is checked
  separately (``user.has_role``): an auditor scoped to nothing is still an auditor.
* ``ou_target_choices()`` -> ``[("ou:DN", label), ...]``: every synced OU in tree order, for the
  target pickers of deployment and approval forms (wherever a group can be chosen, an OU can too).
* ``scope_filter(user, queryset, machine_field="pk")``: narrows a queryset of per-machine rows of
  another app (deployment targets, approvals: ``machine_field="machine"``) to the user's scope in one subquery.

Scopes come from role mappings with an OU (``uus directory map GROUP operator --ou DN``): an operator
of ``ou=Germany`` may act on machines placed in ou=Germany or below (ou=Berlin,ou=Germany...), and
reads stay fleet-wide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet

from uus.core.exceptions import PermissionDenied
from uus.jobs.models import Job

from . import ldapclient
from .exceptions import DirectorySourceInvalid, DirectorySourceNotFound, OrganizationalUnitNotFound
from .models import (
    DirectoryAccount,
    DirectoryComputer,
    DirectorySource,
    MachinePlacement,
    OrganizationalUnit,
    RoleMapping,
)
from .secret_store import secret_read

SYNC_JOB = "uus.directory.tasks.directory_sync"
_INDENT = "\u00a0\u00a0"  # no-break spaces: <option> text keeps them, so the tree shows in a <select>


# ----------------------------------------------------------------------------------- sources
def directory_source_list() -> QuerySet[DirectorySource]:
    return DirectorySource.objects.order_by("name")


def directory_source_get(name: str) -> DirectorySource:
    try:
        return DirectorySource.objects.get(name=name)
    except DirectorySource.DoesNotExist:
        raise DirectorySourceNotFound(f"no directory named '{name}'") from None


def directory_config(source: DirectorySource, *, with_password: bool = True) -> ldapclient.DirectoryConfig:
    """The ldapclient configuration of a source; the password is read from its 0600 file."""
    return ldapclient.DirectoryConfig(
        url=source.url,
        base_dn=source.base_dn,
        bind_dn=source.bind_dn,
        bind_password=secret_read(source.bind_password_file) if with_password else "",
        start_tls=source.has_start_tls,
        ca_cert_data=source.ca_certificate or None,
        ou_filter=source.ou_filter,
        computer_filter=source.computer_filter,
        hostname_attributes=tuple(source.hostname_attributes),
        user_filter=source.user_filter,
        login_attributes=tuple(source.login_attributes),
        group_filter=source.group_filter,
        member_attributes=tuple(source.member_attributes),
        page_size=source.page_size,
        timeout=source.timeout_seconds,
    )


def role_mapping_list(*, source: DirectorySource | None = None) -> QuerySet[RoleMapping]:
    qs = RoleMapping.objects.select_related("source")
    return qs.filter(source=source) if source is not None else qs


def dry_run_latest(source: DirectorySource) -> Job | None:
    """The most recent dry-run sync job of a source, finished or not."""
    return (
        Job.objects.filter(name=SYNC_JOB, kwargs__name=source.name, kwargs__dry_run=True)
        .defer("log")
        .order_by("-created")
        .first()
    )


def sync_jobs_recent(source: DirectorySource, limit: int = 10) -> QuerySet[Job]:
    return Job.objects.filter(name=SYNC_JOB, kwargs__name=source.name).defer("log").order_by("-created")[:limit]


# ------------------------------------------------------------------------------------- OUs
def _key(dn: str) -> str:
    try:
        return ldapclient.dn_key(dn)
    except ldapclient.DirectoryConfigError as exc:
        raise DirectorySourceInvalid(str(exc)) from None


@dataclass
class OuNode:
    """One row of the OU tree: counts include everything below the OU."""

    id: int
    source: str
    dn: str
    name: str
    depth: int
    parent_id: int | None
    computer_count: int
    machine_count: int
    extra: dict[str, Any] = field(default_factory=dict)


def ou_list(*, source: DirectorySource | str | None = None) -> QuerySet[OrganizationalUnit]:
    """OUs in tree order with ``machine_count`` (machines placed in it or below) annotated."""
    qs = OrganizationalUnit.objects.select_related("source").annotate(machine_count=Count("placements"))
    if isinstance(source, DirectorySource):
        qs = qs.filter(source=source)
    elif source:
        qs = qs.filter(source__name=source)
    return qs.order_by("source__name", "sort_key")


def ou_tree(
    *,
    source: DirectorySource | str | None = None,
    extra: Callable[[QuerySet[MachinePlacement]], dict[int, dict[str, Any]]] | None = None,
) -> list[OuNode]:
    """The OU tree (depth-first order) with computer and machine counts per OU, in two queries.

    ``extra`` is the hook for per-OU figures of other apps (exposure to a CVE, pending updates):
    it gets the placements of the listed OUs, returns ``{ou_id: {column: value}}`` computed in one
    query (e.g. ``placements.filter(machine__in=exposed).values("ou_id").annotate(n=Count("machine"))``),
    and each node carries its values in ``node.extra``.
    """
    rows = list(ou_list(source=source))
    extras = extra(MachinePlacement.objects.filter(ou__in=[r.pk for r in rows])) if extra and rows else {}
    return [
        OuNode(
            id=r.pk,
            source=r.source.name,
            dn=r.dn,
            name=r.name,
            depth=r.depth,
            parent_id=r.parent_id,
            computer_count=r.computer_count,
            machine_count=r.machine_count,
            extra=extras.get(r.pk, {}),
        )
        for r in rows
    ]


def ou_target_choices() -> list[tuple[str, str]]:
    """``("ou:DN", "indented name (N machines)")`` for every OU, in tree order; an OU that several
    directories have is listed once (``machines_in_ou`` takes it from all of them)."""
    choices, seen = [], set()
    for ou in ou_list():
        if ou.dn_key in seen:
            continue
        seen.add(ou.dn_key)
        indent = _INDENT * ou.depth
        label = f"{indent}{ou.name} ({ou.machine_count} machines) - {ou.dn}"
        choices.append((f"ou:{ou.dn}", label))
    return choices


def ou_exposed_machine_counts(placements: QuerySet[MachinePlacement]) -> dict[int, int]:
    """Per OU (``{ou_id: n}``, OUs without any left out): machines in it or below that are exposed to
    at least one notice, as ``uus.exposure.selectors`` judges them (no fix yet, fix available or
    approved but not installed, fixed kernel waiting for a reboot). For ``ou_tree(extra=...)``.

    The exposure app has no per-machine count of its own, so this takes the exposed machines from
    its fleet-wide findings (as the dashboard does) and counts placements in Python: one query each,
    and no ``IN`` list of tens of thousands of ids for SQLite's variable limit."""
    from uus.exposure.selectors import EXPOSED_STATUSES, Query, findings

    exposed = {row["machine_id"] for row in findings(Query()) if row["status"] in EXPOSED_STATUSES}
    counts: dict[int, int] = {}
    if not exposed:
        return counts
    for ou_id, machine_id in placements.values_list("ou_id", "machine_id").iterator(chunk_size=5000):
        if machine_id in exposed:
            counts[ou_id] = counts.get(ou_id, 0) + 1
    return counts


def ou_get(dn: str, *, source: DirectorySource | None = None) -> list[OrganizationalUnit]:
    """Every OU with that DN (one per source that has it); raises OrganizationalUnitNotFound."""
    qs = OrganizationalUnit.objects.filter(dn_key=_key(dn))
    if source is not None:
        qs = qs.filter(source=source)
    ous = list(qs)
    if not ous:
        raise OrganizationalUnitNotFound(
            f"no organizational unit {dn} in {'directory ' + source.name if source else 'any directory'}"
            " (run `uus directory sync` first?)"
        )
    return ous


def machine_ids_in_ou(dn: str, *, source: DirectorySource | None = None) -> QuerySet:
    """A subquery of the ids of machines in the OU or any OU below it (one indexed lookup)."""
    ous = ou_get(dn, source=source)
    return MachinePlacement.objects.filter(ou__in=[o.pk for o in ous]).values("machine_id")


def machines_in_ou(dn: str, *, queryset: QuerySet | None = None, source: DirectorySource | None = None) -> QuerySet:
    """Machines in the OU ``dn`` (any spelling) including its sub-OUs, as a queryset to filter further.

    ``queryset`` narrows a machine queryset (the machine list's other filters); an unknown OU raises
    :class:`OrganizationalUnitNotFound` rather than silently matching nothing.
    """
    from uus.inventory.models import Machine

    qs = queryset if queryset is not None else Machine.objects.all()
    return qs.filter(pk__in=machine_ids_in_ou(dn, source=source))


def machines_unmatched(*, queryset: QuerySet | None = None) -> QuerySet:
    """Machines that no computer object of any directory matched."""
    from uus.inventory.models import Machine

    qs = queryset if queryset is not None else Machine.objects.all()
    return qs.exclude(Exists(DirectoryComputer.objects.filter(machine=OuterRef("pk"))))


def computers_unmatched(*, source: DirectorySource | None = None) -> QuerySet[DirectoryComputer]:
    """Computer objects with no UUS machine (not enrolled yet, or named differently)."""
    qs = DirectoryComputer.objects.filter(machine__isnull=True)
    return qs.filter(source=source) if source is not None else qs


def machine_ous(machine) -> QuerySet[OrganizationalUnit]:
    """Every OU a machine is in (nearest first within each source)."""
    return OrganizationalUnit.objects.filter(placements__machine=machine).order_by("source__name", "-depth")


# ---------------------------------------------------------------------------------- scopes
def user_scope(user) -> list[str] | None:
    """DNs of the OUs a user may act in, or None when the user is not limited to OUs.

    Local accounts and superusers are never scoped; a directory user is scoped when every role
    mapping that gave them their role carries an OU scope."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    if user.is_superuser:
        return None
    try:
        account = user.directory_account
    except DirectoryAccount.DoesNotExist:
        return None
    return list(account.scope_ou_dns) or None


def scope_filter(user, queryset: QuerySet, *, machine_field: str = "pk") -> QuerySet:
    """Narrow ``queryset`` to what ``user`` may act on. ``machine_field`` names the machine in the
    queryset's model (``pk`` for machines, ``machine`` for per-machine rows of other apps)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    scope = user_scope(user)
    if scope is None:
        return queryset
    keys = [_key(dn) for dn in scope]
    allowed = MachinePlacement.objects.filter(ou__dn_key__in=keys).values("machine_id")
    return queryset.filter(**{f"{machine_field}__in": allowed})


def user_machine_scope(user) -> QuerySet | None:
    """The machines ``user`` may act on, as a Machine queryset; None when unrestricted."""
    from uus.inventory.models import Machine

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Machine.objects.none()
    if user_scope(user) is None:
        return None
    return scope_filter(user, Machine.objects.all())


def user_may_act_on(user, machines: Iterable | QuerySet) -> bool:
    """True when every machine given (Machine objects, ids or a machine queryset) is in the user's
    scope. Whether the user's *role* allows the action is checked separately (``user.has_role``)."""
    from uus.inventory.models import Machine

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user_scope(user) is None:
        return True
    if isinstance(machines, QuerySet):
        ids = set(machines.values_list("pk", flat=True))
    else:
        ids = {m if isinstance(m, int) else m.pk for m in machines}
    if not ids:
        return True
    allowed = scope_filter(user, Machine.objects.filter(pk__in=ids)).values_list("pk", flat=True)
    return set(allowed) == ids


def scope_require(user, machines: Iterable | QuerySet, *, what: str) -> None:
    """Raise PermissionDenied unless ``user`` may act on every machine given. Actions without a person
    (the CLI run by the server's own user, scheduled jobs) pass ``user=None`` and are not limited."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    if not user_may_act_on(user, machines):
        raise PermissionDenied(
            f"{user.username} may act only on machines in their organizational units ({', '.join(user_scope(user))}); "
            f"{what} reaches machines outside them"
        )
