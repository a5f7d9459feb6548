"""Jobs of the agent API."""

from uus.jobs.registry import job

from . import services


@job("Forget old agent message ids", every=600)
def agent_messages_prune(ctx):
    """Message ids are kept only as long as a replay could still pass the clock check."""
    n = services.agent_messages_prune()
    ctx.log(f"forgot {n} message ids")
    return {"removed": n}
