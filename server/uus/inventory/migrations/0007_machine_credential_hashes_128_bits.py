# Machine credentials are stored as 128 bits of their SHA-256 (services.credential_hash): the hex
# digests already stored are cut to their first 32 digits, which is what the new hash gives, so
# registered machines keep working.

from django.db import migrations, models
from django.db.models.functions import Substr

FIELDS = ("secret_hash", "exchange_token_hash", "previous_exchange_token_hash")


def cut(apps, schema_editor):
    Machine = apps.get_model("inventory", "Machine")
    Machine.objects.update(**{f: Substr(f, 1, 32) for f in FIELDS})


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0006_history_as_inventory_changes"),
    ]

    operations = [
        migrations.RunPython(cut, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="machine",
            name="exchange_token_hash",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AlterField(
            model_name="machine",
            name="previous_exchange_token_hash",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AlterField(
            model_name="machine",
            name="secret_hash",
            field=models.CharField(max_length=32),
        ),
    ]
