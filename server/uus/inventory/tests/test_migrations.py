"""Migrations that rewrite stored inventories keep every row: an older data directory with machines and
their package sets comes out of `migrate` with the same inventories (uus commands migrate by themselves)."""

import pytest
from django.core.management import call_command
from django.db import connection

from uus.inventory import packages as pk
from uus.inventory import services
from uus.inventory.models import Machine

from .factories import entries, entry, machine_make

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = "0007_machine_credential_hashes_128_bits"


def _migrate(*target):
    """As `uus` commands do: with the pre/post-migrate receivers (exposure drops its triggers first)."""
    call_command("migrate", *target, interactive=False, verbosity=0)


def test_compact_tables_keep_every_inventory():
    items = entries(entry("bash", "5.2.15-2+b8", source="bash", source_version="5.2.15-2"), entry("jq", "1.6-2.1"))
    m = machine_make("old-01", packages=items)
    try:
        _migrate("inventory", BEFORE)
        _migrate()
        machine = Machine.objects.get(pk=m.pk)
        assert services.package_set_entries(machine.package_set_id) == items
        assert machine.inventory_hash == pk.inventory_hash(items)
        with connection.cursor() as cur:
            if connection.vendor == "sqlite":
                cur.execute("PRAGMA integrity_check")
                assert cur.fetchall() == [("ok",)]
                cur.execute("SELECT sql FROM sqlite_master WHERE name = 'inventory_packagechunkmember'")
                assert cur.fetchone()[0].endswith("WITHOUT ROWID")
    finally:
        _migrate()
