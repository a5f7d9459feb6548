"""Jobs of the jobs app itself."""

import time
from datetime import timedelta

from django.utils import timezone

from uus.core.exceptions import UusError

from .registry import job


@job("Self-test")
def selftest(ctx, steps: int = 5, delay: float = 0.2, fail: bool = False):
    """Counts to `steps` with progress and log lines; proves that a worker runs jobs end to end."""
    ctx.set_total(steps)
    for i in range(steps):
        ctx.check_cancel()
        time.sleep(delay)
        ctx.log(f"step {i + 1} of {steps}")
        ctx.advance()
    if fail:
        raise UusError("self-test asked to fail")
    return {"steps": steps}


@job("Prune finished jobs", every=24 * 3600)
def prune_jobs(ctx, days: int = 90):
    from .choices import FINISHED_STATES
    from .models import Job

    cutoff = timezone.now() - timedelta(days=days)
    n, _ = Job.objects.filter(state__in=FINISHED_STATES, finished__lt=cutoff).delete()
    ctx.log(f"removed {n} jobs finished before {cutoff:%Y-%m-%d}")
    return {"removed": n}
