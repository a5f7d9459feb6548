"""The database refuses UPDATE and DELETE of audit events (see uus.audit.guard)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from uus.audit.guard import install

    install(schema_editor)


def backwards(apps, schema_editor):
    from uus.audit.guard import uninstall

    uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
