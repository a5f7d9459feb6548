# Smaller inventory storage (docs/performance.md, "Fleet"): no index on machine_id, a 64-bit facts
# digest (stored digests are cleared: the next check-in writes the facts again), no index that only
# repeats the start of a primary key, and on SQLite the two composite-key tables become WITHOUT
# ROWID tables, stored in primary key order with no rowid. The rebuild comes last: SQLite's
# AlterField remakes a table in Django's own (rowid) form.

import django.db.models.deletion
from django.db import migrations, models

# Each table's columns, key columns first (SQLite 3.40's integrity_check misreads WITHOUT ROWID tables
# whose key columns come after others), and its primary key.
COMPACT_TABLES = {
    "inventory_packagechunkmember": (
        '"chunk_id" integer NOT NULL REFERENCES "inventory_packagechunk" ("id") DEFERRABLE INITIALLY DEFERRED, '
        '"package_id" integer NOT NULL REFERENCES "inventory_package" ("id") DEFERRABLE INITIALLY DEFERRED, '
        '"status" smallint unsigned NOT NULL CHECK ("status" >= 0)',
        ("chunk_id", "package_id", "status"),
        ("chunk_id", "package_id"),
    ),
    "inventory_packagesetchunk": (
        '"package_set_id" integer NOT NULL REFERENCES "inventory_packageset" ("id") DEFERRABLE INITIALLY DEFERRED, '
        '"chunk_id" integer NOT NULL REFERENCES "inventory_packagechunk" ("id") DEFERRABLE INITIALLY DEFERRED',
        ("package_set_id", "chunk_id"),
        ("package_set_id", "chunk_id"),
    ),
}


def without_rowid(apps, schema_editor):
    """Rebuild each table as WITHOUT ROWID with the same columns, keys, rows and indexes."""
    conn = schema_editor.connection
    if conn.vendor != "sqlite":
        return
    with conn.cursor() as cur:
        for table, (columns, names, key) in COMPACT_TABLES.items():
            cur.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
            if "WITHOUT ROWID" in cur.fetchone()[0].upper():
                continue
            cur.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table]
            )
            indexes = [row[0] for row in cur.fetchall()]
            new = f"{table}__compact"
            cols = ", ".join(f'"{n}"' for n in names)
            primary = ", ".join(f'"{n}"' for n in key)
            cur.execute(f'CREATE TABLE "{new}" ({columns}, PRIMARY KEY ({primary})) WITHOUT ROWID')
            cur.execute(f'INSERT INTO "{new}" ({cols}) SELECT {cols} FROM "{table}"')
            cur.execute(f'DROP TABLE "{table}"')
            cur.execute(f'ALTER TABLE "{new}" RENAME TO "{table}"')
            for sql in indexes:
                cur.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0007_machine_credential_hashes_128_bits"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: apps.get_model("inventory", "Machine").objects.update(facts_hash=""),
            migrations.RunPython.noop,
        ),
        migrations.AlterField(
            model_name="machine",
            name="facts_hash",
            field=models.CharField(
                blank=True, default="", help_text="digest of the facts last stored (facts_digest)", max_length=16
            ),
        ),
        migrations.AlterField(
            model_name="machine",
            name="machine_id",
            field=models.CharField(blank=True, default="", max_length=128),
        ),
        migrations.AlterField(
            model_name="packagechunkmember",
            name="chunk",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="members",
                to="inventory.packagechunk",
            ),
        ),
        migrations.AlterField(
            model_name="packagesetchunk",
            name="package_set",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="set_chunks",
                to="inventory.packageset",
            ),
        ),
        migrations.RunPython(without_rowid, migrations.RunPython.noop),
    ]
