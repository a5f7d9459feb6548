from django.db import models


class AgentMessage(models.Model):
    """The message_id of every agent request recently accepted, to refuse replays.

    Requests whose sent_at is more than MAX_CLOCK_SKEW away from the server's clock are refused
    anyway, so ids older than twice that can be forgotten (agentapi.tasks.agent_messages_prune).
    A fleet of a million machines keeps about a million rows, so each is small: the key is 64 bits
    of a hash of the message id (services.message_key; a collision only makes one agent retry with
    a fresh id) and `received` is in seconds since the epoch.
    """

    id = models.BigIntegerField(primary_key=True)
    received = models.BigIntegerField(db_index=True)
