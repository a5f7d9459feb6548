from django.db import models


class AgentMessage(models.Model):
    """The message_id of every agent request recently accepted, to refuse replays.

    Requests whose sent_at is more than MAX_CLOCK_SKEW away from the server's clock are refused
    anyway, so ids older than twice that can be forgotten (agentapi.tasks.agent_messages_prune).
    """

    message_id = models.UUIDField(unique=True)
    machine = models.ForeignKey(
        "inventory.Machine", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    received = models.DateTimeField(db_index=True)
