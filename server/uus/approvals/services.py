"""Writes of rings, approvals and groups. Each is one transaction with its audit event; a change of
what a ring may install asks uus.repos to republish that ring once the transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction

from uus.audit.services import audit_record
from uus.core.debversion import version_key
from uus.directory.selectors import scope_require
from uus.inventory.packages import valid_name, valid_version

from . import selectors
from .choices import ApprovalState, GroupKind, RuleKind
from .exceptions import ApprovalInvalid, GroupInvalid
from .models import Approval, ApprovalRule, MachineGroup, RetainedVersion, Ring, RingMembership

log = logging.getLogger(__name__)

RETAIN_SLACK = timedelta(days=1)


def repos_publish_soon(ring: Ring | None) -> None:
    """Republish `ring` (None: every ring) after the current transaction commits. uus.repos provides
    the publisher; until it exists, approvals are stored and take effect at its first publish."""
    try:
        from uus.repos.services import repos_publish_soon as publish
    except ImportError:
        log.info("uus.repos.services.repos_publish_soon does not exist yet: ring %s not republished", ring)
        return
    transaction.on_commit(lambda: publish(ring=ring))


# -- rings -----------------------------------------------------------------------------------------


@transaction.atomic
def ring_create(*, name: str, position: int, description: str = "", user=None) -> Ring:
    if Ring.objects.filter(name=name).exists():
        raise ApprovalInvalid(f"a ring named '{name}' already exists")
    ring = Ring.objects.create(name=name, position=position, description=description)
    audit_record(user, "ring.create", f"ring:{name}", position=position)
    repos_publish_soon(ring)
    return ring


@transaction.atomic
def machine_set_ring(*, machine, ring: Ring, user=None, reason: str = "") -> RingMembership:
    """Put a machine in a ring (its apt sources follow at its next check-in)."""
    old = selectors.ring_of(machine)
    membership, _ = RingMembership.objects.update_or_create(machine=machine, defaults={"ring": ring})
    audit_record(user, "machine.set_ring", f"machine:{machine.hostname}", reason, ring=ring.name, previous=old.name)
    return membership


# -- approvals -------------------------------------------------------------------------------------


def _check(name: str, version: str, state: str) -> None:
    if state not in ApprovalState.values:
        raise ApprovalInvalid(f"'{state}' is not a decision: use one of {', '.join(ApprovalState.values)}")
    if not valid_name(name):
        raise ApprovalInvalid(f"'{name}' is not a valid Debian package name")
    if not valid_version(version):
        raise ApprovalInvalid(f"'{version}' is not a valid Debian version")


def _set_one(ring, name, version, state, comment, user, is_pinned) -> Approval:
    # A decision for a ring reaches every machine of it: an OU-scoped operator may decide only for
    # rings whose machines are all in their OUs.
    scope_require(user, selectors.ring_machines(ring), what=f"a decision for ring '{ring.name}'")
    approval, created = Approval.objects.select_for_update().get_or_create(
        ring=ring,
        name=name,
        version=version,
        defaults={"version_key": version_key(version), "state": state},
    )
    previous = None if created else approval.state
    approval.state = state
    approval.is_pinned = bool(is_pinned) and state == ApprovalState.HELD
    approval.comment = comment
    approval.decided_by = user if getattr(user, "is_authenticated", False) else None
    approval.decided_by_name = getattr(user, "username", "") or (user if isinstance(user, str) else "system")
    approval.save()
    audit_record(
        user, f"approval.{state}", f"ring:{ring.name}", comment, package=name, version=version, previous=previous
    )
    return approval


@transaction.atomic
def approval_set(
    *, ring: Ring, name: str, version: str, state: str, comment: str = "", user=None, is_pinned: bool = False
) -> Approval:
    """Approve, decline or hold one package version for one ring."""
    _check(name, version, state)
    approval = _set_one(ring, name, version, state, comment, user, is_pinned)
    repos_publish_soon(ring)
    return approval


@transaction.atomic
def approvals_set_bulk(
    *, ring: Ring, items: Iterable[tuple[str, str]], state: str, comment: str = "", user=None, is_pinned: bool = False
) -> list[Approval]:
    """The same decision for many (name, version) pairs: all or nothing, one republish. `is_pinned`
    with held keeps the ring at those versions."""
    items = list(items)
    if not items:
        raise ApprovalInvalid("no package versions given")
    for name, version in items:
        _check(name, version, state)
    out = [_set_one(ring, n, v, state, comment, user, is_pinned) for n, v in items]
    repos_publish_soon(ring)
    return out


@transaction.atomic
def ring_promote(
    *, ring: Ring, to_ring: Ring, user=None, names: Iterable[str] = (), comment: str = ""
) -> list[Approval]:
    """Approve for `to_ring` what `ring` has approved (only `names`, if given) and `to_ring` has not
    declined. Returns the approvals created or changed."""
    if ring.pk == to_ring.pk:
        raise ApprovalInvalid("a ring cannot be promoted to itself")
    names = set(names)
    declined = set(Approval.objects.filter(ring=to_ring, state=ApprovalState.DECLINED).values_list("name", "version"))
    approved_there = set(
        Approval.objects.filter(ring=to_ring, state=ApprovalState.APPROVED).values_list("name", "version")
    )
    out = []
    for a in Approval.objects.filter(ring=ring, state=ApprovalState.APPROVED).order_by("name", "version_key"):
        key = (a.name, a.version)
        if (names and a.name not in names) or key in declined or key in approved_there:
            continue
        out.append(
            _set_one(
                to_ring, a.name, a.version, ApprovalState.APPROVED, comment or f"promoted from {ring}", user, False
            )
        )
    audit_record(user, "ring.promote", f"ring:{to_ring.name}", comment, source=ring.name, count=len(out))
    if out:
        repos_publish_soon(to_ring)
    return out


@transaction.atomic
def versions_retain(*, ring: Ring, versions: Iterable[tuple[str, str]], until: datetime) -> int:
    """Keep `versions` visible in `ring` until `until` (the versions a deployment replaced, for rollback).
    Returns how many were new; only new ones change the repository, so only they republish it."""
    wanted = set(versions)
    if not wanted:
        return 0
    known = {
        (n, v): (pk, u)
        for pk, n, v, u in RetainedVersion.objects.filter(ring=ring, name__in={n for n, _ in wanted}).values_list(
            "pk", "name", "version", "until"
        )
    }
    new = [RetainedVersion(ring=ring, name=n, version=v, until=until) for n, v in sorted(wanted - known.keys())]
    RetainedVersion.objects.bulk_create(new, ignore_conflicts=True)
    stale = [pk for key, (pk, u) in known.items() if key in wanted and u < until - RETAIN_SLACK]
    if stale:  # extended at most once a day per version
        RetainedVersion.objects.filter(pk__in=stale).update(until=until)
    if new:
        repos_publish_soon(ring)
    return len(new)


@transaction.atomic
def approval_rule_create(
    *, ring: Ring, kind: str, min_priority: str = "", from_ring: Ring | None = None, after_days: int = 0, user=None
) -> ApprovalRule:
    from uus.catalog.choices import PRIORITIES

    if kind == RuleKind.AUTO_APPROVE_SECURITY:
        if min_priority not in PRIORITIES:
            raise ApprovalInvalid(f"min_priority '{min_priority}' is not one of {', '.join(PRIORITIES)}")
        from_ring, after_days = None, 0
    elif kind == RuleKind.AUTO_PROMOTE:
        if from_ring is None or from_ring.pk == ring.pk:
            raise ApprovalInvalid("a promotion rule needs another ring to promote from")
        if after_days < 0:
            raise ApprovalInvalid("after_days must be 0 or more")
        min_priority = ""
    else:
        raise ApprovalInvalid(f"'{kind}' is not a rule kind: use one of {', '.join(RuleKind.values)}")
    # a rule decides for every machine of its ring, as a decision by hand would
    scope_require(user, selectors.ring_machines(ring), what=f"a rule for ring '{ring.name}'")
    name = user if isinstance(user, str) else (getattr(user, "username", "") or "")
    rule = ApprovalRule.objects.create(
        ring=ring,
        kind=kind,
        min_priority=min_priority,
        from_ring=from_ring,
        after_days=after_days,
        created_by_name=name,
    )
    audit_record(user, "rule.create", f"ring:{ring.name}", str(rule), rule=rule.pk, kind=kind)
    return rule


@transaction.atomic
def approval_rule_delete(*, rule: ApprovalRule, user=None, reason: str = "") -> None:
    """Remove a rule; what it already approved stays approved."""
    scope_require(user, selectors.ring_machines(rule.ring), what=f"a rule for ring '{rule.ring.name}'")
    audit_record(user, "rule.delete", f"ring:{rule.ring.name}", reason or str(rule), rule=rule.pk, kind=rule.kind)
    rule.delete()


# -- groups ----------------------------------------------------------------------------------------


def _group_check(kind: str, release: str, hostname_pattern: str, ou_dn: str) -> None:
    if kind not in GroupKind.values:
        raise GroupInvalid(f"'{kind}' is not a group kind: use one of {', '.join(GroupKind.values)}")
    if kind == GroupKind.RULE and not (release or hostname_pattern):
        raise GroupInvalid("a rule group needs a release or a hostname pattern")
    if hostname_pattern and not selectors.is_valid_glob(hostname_pattern):
        raise GroupInvalid(f"'{hostname_pattern}' is not a valid hostname pattern")
    if kind == GroupKind.OU:
        if not ou_dn:
            raise GroupInvalid("an OU group needs the OU's DN")
        from uus.directory.selectors import machines_in_ou

        machines_in_ou(ou_dn)  # raises OrganizationalUnitNotFound for an unknown OU


@transaction.atomic
def group_create(
    *,
    name: str,
    kind: str = GroupKind.MANUAL,
    description: str = "",
    release: str = "",
    hostname_pattern: str = "",
    ou_dn: str = "",
    machines: Iterable = (),
    user=None,
) -> MachineGroup:
    if MachineGroup.objects.filter(name=name).exists():
        raise GroupInvalid(f"a group named '{name}' already exists")
    _group_check(kind, release, hostname_pattern, ou_dn)
    group = MachineGroup.objects.create(
        name=name, kind=kind, description=description, release=release, hostname_pattern=hostname_pattern, ou_dn=ou_dn
    )
    machines = list(machines)
    if machines:
        if kind != GroupKind.MANUAL:
            raise GroupInvalid("only manual groups list machines")
        group.members.add(*machines)
    audit_record(user, "group.create", f"group:{name}", kind=kind, machines=[m.hostname for m in machines])
    return group


@transaction.atomic
def group_update(*, group: MachineGroup, user=None, **fields) -> MachineGroup:
    for key in ("description", "release", "hostname_pattern", "ou_dn"):
        if key in fields:
            setattr(group, key, fields[key])
    _group_check(group.kind, group.release, group.hostname_pattern, group.ou_dn)
    group.save()
    audit_record(user, "group.update", f"group:{group.name}", **{k: v for k, v in fields.items() if k != "machines"})
    return group


@transaction.atomic
def group_members_set(*, group: MachineGroup, add: Iterable = (), remove: Iterable = (), user=None) -> MachineGroup:
    if group.kind != GroupKind.MANUAL:
        raise GroupInvalid(f"group '{group.name}' is chosen by {group.kind}; its machines cannot be listed")
    add, remove = list(add), list(remove)
    group.members.add(*add)
    group.members.remove(*remove)
    audit_record(
        user,
        "group.members",
        f"group:{group.name}",
        added=[m.hostname for m in add],
        removed=[m.hostname for m in remove],
    )
    return group


@transaction.atomic
def group_delete(*, group: MachineGroup, user=None) -> None:
    audit_record(user, "group.delete", f"group:{group.name}")
    group.delete()
