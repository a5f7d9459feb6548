# Machines per (package set, release, running kernel, ring), kept by triggers (uus.exposure.machine_counts):
# only the table: the triggers and the first count come after every migrate (post_migrate), see that module.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exposure", "0002_evaluated_set_per_release"),
    ]

    operations = [
        migrations.CreateModel(
            name="MachineCount",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("package_set_id", models.IntegerField()),
                ("release", models.CharField(max_length=64)),
                ("kernel", models.CharField(max_length=255)),
                (
                    "ring_id",
                    models.BigIntegerField(help_text="the machine's ring; 0: no membership (the default ring)"),
                ),
                ("machines", models.PositiveIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("package_set_id", "release", "kernel", "ring_id"), name="uniq_machine_count_group"
                    )
                ]
            },
        ),
    ]
