# The message-id table holds only an hour of ids, so it is made again in its compact form
# (64-bit key, received in epoch seconds) instead of converting rows.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agentapi", "0001_initial"),
        ("inventory", "0006_history_as_inventory_changes"),
    ]

    operations = [
        migrations.DeleteModel(name="AgentMessage"),
        migrations.CreateModel(
            name="AgentMessage",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("received", models.BigIntegerField(db_index=True)),
            ],
        ),
    ]
