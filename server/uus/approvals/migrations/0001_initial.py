import django.db.models.deletion
from django.db import migrations, models


def default_rings(apps, schema_editor):
    Ring = apps.get_model("approvals", "Ring")
    Ring.objects.get_or_create(name="test", defaults={"position": 10, "description": "a few machines that get updates first"})
    Ring.objects.get_or_create(name="production", defaults={"position": 100, "description": "the rest of the fleet"})


class Migration(migrations.Migration):
    initial = True
    dependencies = [("inventory", "0002_machines_and_packages")]

    operations = [
        migrations.CreateModel(
            name="Ring",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("updated", models.DateTimeField(auto_now=True)),
                ("name", models.SlugField(max_length=64, unique=True)),
                ("position", models.PositiveIntegerField(default=0, help_text="order of promotion: lower comes first")),
                ("description", models.CharField(blank=True, default="", max_length=200)),
            ],
            options={"ordering": ["position", "name"]},
        ),
        migrations.CreateModel(
            name="RingMembership",
            fields=[
                ("machine", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                 related_name="ring_membership", serialize=False,
                                                 to="inventory.machine")),
                ("updated", models.DateTimeField(auto_now=True)),
                ("ring", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="memberships",
                                           to="approvals.ring")),
            ],
        ),
        migrations.RunPython(default_rings, migrations.RunPython.noop),
    ]
