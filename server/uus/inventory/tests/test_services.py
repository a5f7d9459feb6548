"""Machine and inventory services, called directly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from uus.inventory import packages as pk
from uus.inventory import selectors, services
from uus.inventory.choices import PackageStatus
from uus.inventory.exceptions import (
    BaseMismatch,
    CloneSuspected,
    EnrollmentRefused,
    HashMismatch,
    InvalidInventory,
    MachineRevoked,
    MachineUnauthorized,
)
from uus.inventory.models import (
    EnrollmentToken,
    InventoryChange,
    Machine,
    Package,
    PackageChunk,
    PackageChunkMember,
    PackageSet,
    PackageSetChunk,
)
from uus.inventory.signals import inventory_changed

from .factories import entries, entry, facts_make, machine_make, machine_register

pytestmark = pytest.mark.django_db

BASE = entries(
    entry("bash", "5.2.15-2+b8", source="bash", source_version="5.2.15-2"),
    entry("bsdutils", "1:2.38.1-5+deb12u3", source="util-linux", source_version="2.38.1-5+deb12u3"),
    entry("jq", "1.6-2.1+deb12u2"),
    entry("libjq1", "1.6-2.1+deb12u2", source="jq"),
    entry("sl", "5.02-1+b1", source="sl", source_version="5.02-1"),
    entry("figlet", "2.2.5-3+b1", source="figlet", source_version="2.2.5-3", status="config-files"),
)


def full(machine, items):
    return services.inventory_apply_full(machine=machine, inventory_hash=pk.inventory_hash(items), entries=items)


def table_counts():
    return {
        m.__name__: m.objects.count()
        for m in (
            Machine,
            Package,
            PackageChunk,
            PackageChunkMember,
            PackageSet,
            PackageSetChunk,
            InventoryChange,
            EnrollmentToken,
        )
    }


# -- registration and credentials ---------------------------------------------------------------------


class TestMachineRegister:
    def test_registration_stores_facts_and_only_hashes(self):
        _, key = services.enrollment_token_create(group="paris-web")
        creds = services.machine_register(
            token=key, facts=facts_make("web-01", release="12", os_id="debian"), agent_version="0.1.0"
        )
        m = Machine.objects.get(pk=creds.machine.pk)
        assert (m.hostname, m.release, m.os_id, m.os_codename, m.enrollment_group) == (
            "web-01",
            "12",
            "debian",
            "bookworm",
            "paris-web",
        )
        assert creds.secret not in (m.secret_hash, m.exchange_token_hash) and len(m.secret_hash) == 32
        assert services.machine_authenticate(client_id=creds.client_id, secret=creds.secret).pk == m.pk
        assert EnrollmentToken.objects.get().uses == 1

    def test_release_falls_back_to_the_codename(self):
        facts = facts_make("sid-01")
        facts["os"] = {"id": "debian", "version_id": None, "version_codename": "trixie", "pretty_name": None}
        _, key = services.enrollment_token_create()
        assert services.machine_register(token=key, facts=facts).machine.release == "trixie"

    @pytest.mark.parametrize("how", ["expired", "used up", "revoked", "unknown"])
    def test_refused_tokens_register_nothing(self, how):
        token, key = services.enrollment_token_create(
            max_uses=1, expires=timezone.now() - timedelta(seconds=1) if how == "expired" else None
        )
        if how == "used up":
            services.enrollment_token_use(key)
        if how == "revoked":
            services.enrollment_token_revoke(token=token)
        before = table_counts()
        with pytest.raises(EnrollmentRefused):
            services.machine_register(token="nope" if how == "unknown" else key, facts=facts_make())
        assert table_counts() == before

    def test_bad_facts_spend_no_token_use(self):
        token, key = services.enrollment_token_create()
        with pytest.raises(InvalidInventory, match="hostname"):
            services.machine_register(token=key, facts={"hostname": ""})
        token.refresh_from_db()
        assert token.uses == 0 and not Machine.objects.exists()

    def test_same_machine_registering_again_keeps_its_record_with_new_credentials(self):
        first = machine_register("web-02")
        _, key = services.enrollment_token_create()
        second = services.machine_register(token=key, facts=facts_make("web-02"))
        assert second.machine.pk == first.machine.pk and Machine.objects.count() == 1
        with pytest.raises(MachineUnauthorized):
            services.machine_authenticate(client_id=first.client_id, secret=first.secret)
        services.machine_authenticate(client_id=second.client_id, secret=second.secret)

    def test_wrong_secret_and_revoked_machine_are_refused(self):
        creds = machine_register()
        with pytest.raises(MachineUnauthorized):
            services.machine_authenticate(client_id=creds.client_id, secret="wrong")
        services.machine_revoke(machine=creds.machine)
        with pytest.raises(MachineRevoked):
            services.machine_authenticate(client_id=creds.client_id, secret=creds.secret)


# -- check-in -------------------------------------------------------------------------------------------


def check_in(machine, token, *, inventory_hash=None, previous=None, facts=None):
    machine = Machine.objects.get(pk=machine.pk)
    return services.machine_check_in(
        machine=machine,
        exchange_token=token,
        facts=facts or facts_make(machine.hostname),
        inventory_hash=inventory_hash or pk.inventory_hash(BASE),
        previous_inventory_hash=previous,
    )


class TestMachineCheckIn:
    def test_exchange_token_rotates_and_the_previous_one_is_good_once(self):
        creds = machine_register()
        a = check_in(creds.machine, creds.exchange_token)
        b = check_in(creds.machine, a.next_exchange_token)  # normal
        c = check_in(creds.machine, a.next_exchange_token)  # b's answer was lost: previous token, accepted once
        with pytest.raises(CloneSuspected):
            check_in(creds.machine, a.next_exchange_token)  # a third use of it: two agents
        with pytest.raises(CloneSuspected):
            check_in(creds.machine, b.next_exchange_token)  # b's token was superseded by c
        check_in(creds.machine, c.next_exchange_token)

    def test_a_clone_changes_nothing_but_the_flag(self):
        creds = machine_register()
        a = check_in(creds.machine, creds.exchange_token)
        check_in(creds.machine, a.next_exchange_token)
        before = Machine.objects.filter(pk=creds.machine.pk).values().get()
        with pytest.raises(CloneSuspected):
            check_in(creds.machine, creds.exchange_token, facts=facts_make("evil-twin"))
        assert Machine.objects.filter(pk=creds.machine.pk).values().get() == before
        services.machine_flag_clone(machine=creds.machine)
        assert Machine.objects.get(pk=creds.machine.pk).is_clone_suspected

    def test_inventory_answer_ok_full_delta(self):
        creds = machine_register()
        assert check_in(creds.machine, creds.exchange_token).inventory == "full"
        full(Machine.objects.get(pk=creds.machine.pk), BASE)
        changed = pk.inventory_hash(entries(*BASE, entry("hello", "2.10-3")))
        token = creds.exchange_token
        r = check_in(creds.machine, token, inventory_hash=pk.inventory_hash(BASE), previous=None)
        assert r.inventory == "ok"
        r = check_in(creds.machine, r.next_exchange_token, inventory_hash=changed, previous=pk.inventory_hash(BASE))
        assert r.inventory == "delta"
        r = check_in(creds.machine, r.next_exchange_token, inventory_hash=changed, previous="0" * 64)
        assert r.inventory == "full"

    def test_a_known_inventory_is_adopted_without_upload(self):
        machine_make("twin-a", packages=BASE)
        creds = machine_register("twin-b")
        r = check_in(creds.machine, creds.exchange_token, inventory_hash=pk.inventory_hash(BASE))
        assert r.inventory == "ok"
        m = Machine.objects.get(pk=creds.machine.pk)
        assert m.inventory_hash == pk.inventory_hash(BASE) and m.package_count == len(BASE)
        assert PackageSet.objects.count() == 1

    def test_facts_are_updated(self):
        creds = machine_register("old-name")
        check_in(
            creds.machine,
            creds.exchange_token,
            facts=facts_make("new-name", kernel="6.8.0-1-generic", reboot_required=True),
        )
        m = Machine.objects.get(pk=creds.machine.pk)
        assert (m.hostname, m.kernel, m.is_reboot_required) == ("new-name", "6.8.0-1-generic", True)
        assert m.last_seen is not None


# -- inventories ----------------------------------------------------------------------------------------


class TestInventoryApplyFull:
    def test_identical_inventories_share_one_set(self):
        a = machine_make(packages=BASE)
        b = machine_make(packages=BASE)
        assert a.package_set_id == b.package_set_id
        assert PackageSet.objects.count() == 1 and Package.objects.count() == len(BASE)
        assert PackageChunkMember.objects.count() == len(BASE)
        assert services.package_set_entries(a.package_set_id) == BASE

    def test_inventories_that_differ_in_one_package_share_all_other_chunks(self):
        a = machine_make(packages=BASE)
        other = entries(*[e for e in BASE if e[0] != "jq"], entry("jq", "1.6-2.1+deb12u3"))
        b = machine_make(packages=other)
        assert a.package_set_id != b.package_set_id
        chunks_a = set(PackageSetChunk.objects.filter(package_set_id=a.package_set_id).values_list("chunk", flat=True))
        chunks_b = set(PackageSetChunk.objects.filter(package_set_id=b.package_set_id).values_list("chunk", flat=True))
        assert len(chunks_a ^ chunks_b) == 2 and len(chunks_a & chunks_b) == len(chunks_a) - 1
        assert Package.objects.count() == len(BASE) + 1

    def test_version_keys_are_stored_for_database_comparison(self):
        machine_make(packages=BASE)
        bsd = Package.objects.get(name="bsdutils")
        from uus.core.debversion import version_key

        assert bytes(bsd.version_key) == version_key("1:2.38.1-5+deb12u3")
        assert bytes(bsd.source_version_key) == version_key("2.38.1-5+deb12u3")
        assert (
            Package.objects.filter(source="util-linux", source_version_key__lt=version_key("2.38.1-5+deb12u4")).count()
            == 1
        )

    def test_wrong_hash_changes_nothing(self):
        m = machine_make(packages=BASE)
        before = table_counts()
        bigger = entries(*BASE, entry("hello", "2.10-3"))
        with pytest.raises(HashMismatch) as exc:
            services.inventory_apply_full(machine=m, inventory_hash=pk.inventory_hash(BASE), entries=bigger)
        assert exc.value.status == 400
        assert table_counts() == before
        assert Machine.objects.get(pk=m.pk).inventory_hash == pk.inventory_hash(BASE)

    def test_history_records_each_kind_of_change(self):
        m = machine_make(packages=BASE)
        assert not InventoryChange.objects.exists()  # the first inventory is the baseline
        after = entries(
            entry("bash", "5.2.15-2+b8", source="bash", source_version="5.2.15-2"),
            entry("bsdutils", "1:2.38.1-5+deb12u2", source="util-linux", source_version="2.38.1-5+deb12u2"),
            entry("jq", "1.6-2.1+deb12u3"),
            entry("libjq1", "1.6-2.1+deb12u2", source="jq", status="half-configured"),
            entry("sl", "5.02-1+b1", source="sl", source_version="5.02-1", status="config-files"),
            entry("hello", "2.10-3"),
        )
        full(Machine.objects.get(pk=m.pk), after)
        (change,) = selectors.machine_history(machine=m)
        got = {(c.kind, c.name, c.old_version, c.new_version) for c in selectors.inventory_change_packages(change)}
        assert got == {
            ("downgraded", "bsdutils", "1:2.38.1-5+deb12u3", "1:2.38.1-5+deb12u2"),
            ("upgraded", "jq", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"),
            ("changed", "libjq1", "1.6-2.1+deb12u2", "1.6-2.1+deb12u2"),
            ("removed", "sl", "5.02-1+b1", None),
            ("installed", "hello", None, "2.10-3"),
        }  # figlet: config files purged, nothing was installed before or after

    def test_inventory_changed_gets_the_changed_package_ids(self):
        calls = []

        def receiver(sender, machine, changed_package_ids, **kw):
            calls.append((machine.pk, set(changed_package_ids)))

        inventory_changed.connect(receiver)
        try:
            m = machine_make(packages=BASE)
            assert calls == [(m.pk, set(Package.objects.values_list("id", flat=True)))]
            upgraded = entries(*[e for e in BASE if e[0] != "jq"], entry("jq", "1.6-2.1+deb12u3"))
            full(Machine.objects.get(pk=m.pk), upgraded)
            old, new = (
                Package.objects.get(name="jq", version="1.6-2.1+deb12u2"),
                Package.objects.get(name="jq", version="1.6-2.1+deb12u3"),
            )
            assert calls[1] == (m.pk, {old.pk, new.pk})
            full(Machine.objects.get(pk=m.pk), upgraded)  # same inventory again: no change, no signal
            assert len(calls) == 2
        finally:
            inventory_changed.disconnect(receiver)


class TestInventoryApplyDelta:
    def test_delta_gives_the_same_as_full(self):
        m = machine_make(packages=BASE)
        added = [entry("hello", "2.10-3"), entry("jq", "1.6-2.1+deb12u3")]
        after = pk.apply_delta(BASE, added, [("sl", "amd64")])
        services.inventory_apply_delta(
            machine=Machine.objects.get(pk=m.pk),
            inventory_hash=pk.inventory_hash(after),
            base_hash=pk.inventory_hash(BASE),
            added=added,
            removed=[("sl", "amd64")],
        )
        m.refresh_from_db()
        assert services.package_set_entries(m.package_set_id) == after
        (change,) = selectors.machine_history(machine=m)
        assert {c.name for c in selectors.inventory_change_packages(change)} == {"hello", "jq", "sl"}

    def test_base_mismatch_and_wrong_result_change_nothing(self):
        m = machine_make(packages=BASE)
        before = table_counts()
        added = [entry("hello", "2.10-3")]
        with pytest.raises(BaseMismatch) as exc:
            services.inventory_apply_delta(
                machine=m,
                inventory_hash=pk.inventory_hash(entries(*BASE, *added)),
                base_hash="1" * 64,
                added=added,
                removed=[],
            )
        assert exc.value.status == 409 and exc.value.details["known_hash"] == pk.inventory_hash(BASE)
        with pytest.raises(HashMismatch) as exc:
            services.inventory_apply_delta(
                machine=m, inventory_hash="2" * 64, base_hash=pk.inventory_hash(BASE), added=added, removed=[]
            )
        assert exc.value.status == 409  # the agent answers a 409 with its full inventory
        assert table_counts() == before


# -- garbage collection and the package cache ---------------------------------------------------------


def test_unused_sets_and_chunks_are_collected_once_history_forgets_them(settings):
    m = machine_make(packages=BASE)
    first_set = m.package_set_id
    upgraded = entries(*[e for e in BASE if e[0] != "jq"], entry("jq", "1.6-2.1+deb12u3"))
    full(Machine.objects.get(pk=m.pk), upgraded)
    assert services.package_sets_collect()["sets"] == 0  # within the grace period
    # the history row still names the first inventory: kept, and its changes still readable
    assert services.package_sets_collect(grace=timedelta(0)) == {"history": 0, "sets": 0, "chunks": 0}
    (change,) = selectors.machine_history(machine=m)
    assert [(c.kind, c.name) for c in selectors.inventory_change_packages(change)] == [("upgraded", "jq")]
    InventoryChange.objects.update(time=timezone.now() - timedelta(days=settings.UUS["inventory_history_days"] + 1))
    result = services.package_sets_collect(grace=timedelta(0))
    assert result == {"history": 1, "sets": 1, "chunks": 1}
    assert not PackageSet.objects.filter(pk=first_set).exists()
    m.refresh_from_db()
    assert services.package_set_entries(m.package_set_id) == upgraded


def test_a_fleet_upgrading_together_costs_one_history_row_per_machine():
    """History is a row per inventory change, not per package: the package changes are the difference
    of two stored sets, shared by every machine that made the same move."""
    upgraded = entries(*[e for e in BASE if e[0] != "jq"], entry("jq", "1.6-2.1+deb12u3"))
    fleet = [machine_make(f"web-{i}", packages=BASE) for i in range(5)]
    for m in fleet:
        full(Machine.objects.get(pk=m.pk), upgraded)
    assert InventoryChange.objects.count() == 5
    assert PackageSet.objects.count() == 2
    for m in fleet:
        (change,) = selectors.machine_history(machine=m)
        assert [(c.name, c.old_version, c.new_version) for c in selectors.inventory_change_packages(change)] == [
            ("jq", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3")
        ]


def test_package_ids_resolve_existing_rows_and_add_missing_ones():
    keys = [e[:5] for e in BASE]
    ids = services.package_ids(keys)
    assert set(ids) == set(keys) and Package.objects.count() == len(keys)
    assert services.package_ids(keys) == ids  # found again, nothing added
    assert Package.objects.count() == len(keys)


def test_status_is_stored_per_machine_not_per_package():
    machine_make(packages=BASE)
    figlet = PackageChunkMember.objects.get(package__name="figlet")
    assert figlet.status == PackageStatus.CONFIG_FILES


def _own_statements(queries) -> list[str]:
    """Statements of the inventory itself: not those of inventory_changed receivers in other apps
    (exposure), and not savepoints."""
    return [
        q["sql"]
        for q in queries
        if "exposure_" not in q["sql"] and not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def test_full_upload_query_count_is_bounded():
    """A fleet-sized inventory costs batched queries (SQLite takes 999 parameters per statement),
    never one per package; an inventory the server already has costs a handful."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    many = entries(*[entry(f"pkg{i}", f"1.{i}-1") for i in range(2000)])
    m = machine_make()
    with CaptureQueriesContext(connection) as queries:
        full(Machine.objects.get(pk=m.pk), many)
    assert len(_own_statements(queries)) <= 50, "\n".join(_own_statements(queries))
    other = machine_make()
    with CaptureQueriesContext(connection) as queries:  # the same inventory again: the set exists
        full(Machine.objects.get(pk=other.pk), many)
    # machine, set, its chunks, the changed package ids for receivers, the update
    assert len(_own_statements(queries)) <= 5, "\n".join(_own_statements(queries))
