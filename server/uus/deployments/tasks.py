"""Periodic work of deployments: start what is due (windows, schedules, batches) and mark late jobs."""

from uus.jobs.registry import job


@job("Advance deployments", every=30, locks=("deployments",))
def deployments_advance(ctx):
    from .services import deployments_advance_all

    n = deployments_advance_all()
    ctx.log(f"advanced {n} deployments")
    return {"advanced": n}


@job("Apply approval rules", every=600, locks=("approval-rules",))
def approval_rules_apply(ctx):
    from .services import approval_rules_apply as apply

    out = apply()
    ctx.log(f"approved {out['approved']} security updates, promoted {out['promoted']} versions")
    return out


@job("Announce new security updates", every=3600, locks=("security-notify",))
def security_updates_notify(ctx):
    from .notifications import security_updates_notify as announce

    n = announce()
    ctx.log(f"announced {n} new security updates")
    return {"announced": n}
