"""Jobs of the inventory app: thin wrappers around services."""

from uus.jobs.registry import job

from . import services


@job("Collect unused package sets", every=3600)
def package_sets_collect(ctx):
    """Delete inventories (package sets) no machine points at any more, then their unused chunks."""
    result = services.package_sets_collect()
    ctx.log(f"removed {result['sets']} package sets and {result['chunks']} chunks no machine uses")
    return result
