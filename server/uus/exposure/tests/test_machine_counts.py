"""The machine counts per (package set, release, running kernel, ring) that result pages read must equal
the machines at every moment: the database triggers that keep them are checked against a count made
here from the machine rows, after each kind of change a machine goes through."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from uus.approvals import services as approvals
from uus.approvals.models import RingMembership
from uus.exposure import machine_counts
from uus.exposure.models import MachineCount
from uus.inventory import packages as pk
from uus.inventory import services as inventory
from uus.inventory.models import Machine
from uus.inventory.tests.factories import entry, facts_make, machine_make, machine_register


def _stored() -> Counter:
    return Counter(
        {
            (s, r, k, g): n
            for s, r, k, g, n in MachineCount.objects.values_list(
                "package_set_id", "release", "kernel", "ring_id", "machines"
            )
        }
    )


def _counted_here() -> Counter:
    """The groups as the rule defines them, from the machine and membership rows themselves."""
    rings = dict(RingMembership.objects.values_list("machine_id", "ring_id"))
    return Counter(
        (m.package_set_id, m.release, m.kernel, rings.get(m.pk, 0))
        for m in Machine.objects.filter(is_revoked=False, package_set__isnull=False)
    )


def _check() -> None:
    want = _counted_here()
    assert _stored() == want
    assert 0 not in _stored().values()  # a group no machine is in any more is gone
    machine_counts.recount()
    assert _stored() == want


def _packages(*versions: str) -> list:
    return [entry("openssh-server", v, source="openssh", source_version=v) for v in versions] + [
        entry("curl", "7.81.0-1ubuntu1.15")
    ]


def _check_in(machine: Machine, credentials, **facts) -> None:
    """A check-in through the agent path's own service (plain SELECT and UPDATE of the machine row)."""
    row = inventory.machine_lock(machine.pk)
    facts = facts_make(machine.hostname, **facts)
    inventory.machine_check_in(
        machine=row,
        exchange_token=credentials.exchange_token,
        facts=facts,
        inventory_hash=row.inventory_hash,
        previous_inventory_hash=None,
    )


def test_counts_follow_every_kind_of_machine_change(db):
    assert machine_counts.installed() == set(machine_counts.TRIGGERS)
    old, new = _packages("1:8.9p1-3ubuntu0.1"), _packages("1:8.9p1-3ubuntu0.10")
    machines = [machine_make(f"h{i}", packages=old if i % 3 else new) for i in range(6)]
    registered_only = machine_register("no-inventory-yet")  # no package set: in no group
    _check()
    assert sum(_stored().values()) == 6

    # an inventory upload moves a machine to another set
    inventory.inventory_apply_full(machine=machines[1], inventory_hash=pk.inventory_hash(new), entries=new)
    _check()
    # a check-in through the agent path: the running kernel changes (a reboot), then the release
    creds = machine_register("h-agent")
    agent_machine = creds.machine
    inventory.inventory_apply_full(machine=agent_machine, inventory_hash=pk.inventory_hash(old), entries=old)
    _check_in(agent_machine, creds, kernel="5.15.0-91-generic")
    _check()
    agent_machine.refresh_from_db()
    assert agent_machine.kernel == "5.15.0-91-generic"
    creds = inventory.machine_register(
        token=inventory.enrollment_token_create()[1], facts=facts_make("h-agent", release="24.04"), agent_version="t"
    )
    _check()
    # a check-in that adopts an inventory another machine already uploaded (no upload at all)
    fresh = machine_register("adopter")
    row = inventory.machine_lock(fresh.machine.pk)
    inventory.machine_check_in(
        machine=row,
        exchange_token=fresh.exchange_token,
        facts=facts_make("adopter"),
        inventory_hash=pk.inventory_hash(new),
        previous_inventory_hash=None,
    )
    _check()

    # rings: joining one, moving to another, leaving for the default ring
    test_ring = approvals.ring_create(name="canary-counts", position=7)
    early = approvals.ring_create(name="early-counts", position=8)
    for m in machines[:3]:
        approvals.machine_set_ring(machine=m, ring=test_ring)
    _check()
    approvals.machine_set_ring(machine=machines[0], ring=early)
    _check()
    RingMembership.objects.filter(machine=machines[1]).delete()
    _check()
    # a machine in a ring changes its set and kernel in one UPDATE
    inventory.inventory_apply_full(machine=machines[2], inventory_hash=pk.inventory_hash(old), entries=old)
    Machine.objects.filter(pk=machines[2].pk).update(kernel="6.8.0-31-generic")
    _check()

    # revoked machines count nowhere
    inventory.machine_revoke(machine=machines[3])
    _check()
    # bulk changes that bypass every model method
    Machine.objects.filter(pk__in=[m.pk for m in machines[:5]]).update(release="20.04")
    Machine.objects.bulk_create(
        [
            Machine(hostname=f"bulk{i}", client_id=f"bulk-{i}", secret_hash="0" * 32, release="22.04", kernel="k")
            for i in range(3)
        ]
    )
    Machine.objects.filter(hostname__startswith="bulk").update(package_set_id=machines[0].package_set_id)
    _check()
    # deleting machines, with their ring membership (Django deletes the membership first), and without
    machines[0].delete()
    Machine.objects.filter(hostname__startswith="bulk").delete()
    registered_only.machine.delete()
    _check()
    assert sum(_stored().values()) == Machine.objects.filter(is_revoked=False, package_set__isnull=False).count()


def test_recount_repairs_a_count_changed_behind_the_triggers(db):
    for i in range(3):
        machine_make(f"r{i}", packages=_packages("1:8.9p1-3ubuntu0.1"))
    want = _counted_here()
    MachineCount.objects.update(machines=99)
    MachineCount.objects.create(package_set_id=123456, release="x", kernel="y", ring_id=0, machines=5)
    assert _stored() != want
    machine_counts.recount()
    assert _stored() == want


def test_rebuild_recounts(db):
    from uus.exposure import services

    machine_make("a", packages=_packages("1:8.9p1-3ubuntu0.1"))
    MachineCount.objects.all().delete()
    services.exposure_rebuild()
    assert _stored() == _counted_here() and sum(_stored().values()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_migration_that_rebuilds_the_machine_table_keeps_triggers_and_counts():
    """Inventory's migration 0007 alters a machine column: SQLite rebuilds the whole table for that, which
    a trigger naming the table elsewhere would refuse, and drops the table's own triggers. Migrating it
    back and forth through `migrate` must leave the triggers in place and the counts exact."""
    for i in range(4):
        machine_make(f"m{i}", packages=_packages("1:8.9p1-3ubuntu0.1" if i % 2 else "1:8.9p1-3ubuntu0.10"))
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    before = _stored()
    try:
        call_command("migrate", "inventory", "0006_history_as_inventory_changes", verbosity=0)
        assert machine_counts.installed() == set(machine_counts.TRIGGERS)
    finally:
        call_command("migrate", verbosity=0)
    assert {m for m in leaves} <= set(MigrationExecutor(connection).loader.applied_migrations)
    assert machine_counts.installed() == set(machine_counts.TRIGGERS)
    assert _stored() == before == _counted_here()
    Machine.objects.filter(hostname="m0").update(kernel="6.8.0-1-generic")  # and the triggers still count
    _check()


def test_missing_triggers_are_reinstalled_with_a_recount(db):
    machine_make("x", packages=_packages("1:8.9p1-3ubuntu0.1"))
    machine_counts.uninstall()
    Machine.objects.update(kernel="changed-while-uninstalled")
    assert _stored() != _counted_here()
    assert machine_counts.ensure() is True
    assert machine_counts.installed() == set(machine_counts.TRIGGERS)
    assert _stored() == _counted_here()
    assert machine_counts.ensure() is False
