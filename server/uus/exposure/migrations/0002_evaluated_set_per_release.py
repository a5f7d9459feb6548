# Evaluation marks become per (package set, release). They are only marks: the new table starts empty,
# and the periodic job exposure_evaluate_pending (or `uus exposure rebuild`) evaluates the pairs in use.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("exposure", "0001_initial"),
        ("inventory", "0002_machines_and_packages"),
    ]

    operations = [
        migrations.DeleteModel(name="EvaluatedSet"),
        migrations.CreateModel(
            name="EvaluatedSet",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("release", models.CharField(max_length=64)),
                ("evaluated", models.DateTimeField(auto_now=True)),
                (
                    "package_set",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="inventory.packageset"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("package_set", "release"), name="uniq_evaluated_set_release")
                ]
            },
        ),
    ]
