"""Repository jobs: thin wrappers that load rows and call one service."""

from __future__ import annotations

from uus.jobs.registry import job

from . import agent_package, services


@job("Publish a ring's repository")
def repo_publish(ctx, ring: str):
    repo = services.repo_publish(ring=services.ring_get(ring), ctx=ctx)
    return {"ring": ring, "packages": repo.package_count, "suites": repo.suites, "generation": repo.generation}


@job("Re-sign every repository before Valid-Until", every=24 * 3600)
def repos_renew(ctx):
    """Clients refuse a suite `repo_valid_days` after it was signed: publish every ring again
    (unchanged indexes are reused, so this costs about a second per large suite)."""
    jobs = services.repos_publish_soon()
    ctx.log(f"queued {len(jobs)} publish job(s)")
    return {"queued": [str(j.pk) for j in jobs]}  # ids as text: a result is stored as JSON


@job("Fetch changed upstream indexes, then publish", locks=("repos:upstream-indexes",))
def upstream_indexes_changed(ctx, index_ids: list[int]):
    n = services.upstream_indexes_prefetch(index_ids)
    ctx.log(f"fetched {n} upstream index(es)")
    services.repos_publish_soon()
    return {"fetched": n}


@job("Pull-through cache maintenance", every=3600, locks=("repos:cache",))
def cache_maintain(ctx):
    result = services.cache_evict()
    ctx.log(
        f"evicted {result['evicted']} cached file(s) ({result['freed']} bytes), removed {result['removed']} "
        "unreferenced pool file(s)"
    )
    return result


@job("Publish the uus-agent package", every=24 * 3600, locks=("repos:agent-package",))
def agent_package_publish(ctx):
    """Machines install their agent from uus-local: build and store this server's agent version
    once (a no-op while it is stored)."""
    row, created = agent_package.agent_package_publish()
    ctx.log(f"{'published' if created else 'already published:'} {row.name} {row.version} ({row.sha256[:16]})")
    return {"package": row.name, "version": row.version, "created": created}
