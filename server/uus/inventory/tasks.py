"""Jobs of the inventory app: thin wrappers around services."""

from uus.jobs.registry import job

from . import services


@job("Collect unused package sets", every=3600)
def package_sets_collect(ctx):
    """Forget expired history, then delete inventories (package sets) no machine and no history uses,
    then their unused chunks."""
    result = services.package_sets_collect()
    ctx.log(
        f"forgot {result['history']} history rows past inventory_history_days; removed {result['sets']} package "
        f"sets and {result['chunks']} chunks nothing uses"
    )
    return result
