from django.db import transaction
from django.utils import timezone

from uus.jobs.registry import job

from . import selectors, services
from .models import ExposureSnapshot


@job("Evaluate exposure of new package sets", every=3600, locks=("exposure",))
def exposure_evaluate_pending(ctx):
    n = services.exposure_evaluate_pending()
    ctx.log(f"{n} new findings")
    return {"findings": n}


@job("Rebuild all exposure findings", locks=("exposure",))
def exposure_rebuild(ctx):
    n = services.exposure_rebuild()
    ctx.log(f"{n} findings")
    return {"findings": n}


@job("Record the daily exposure snapshot", every=6 * 3600)
def exposure_snapshot(ctx):
    """Counts for the trend chart; rerunning on the same day overwrites that day's row."""
    overview = selectors.fleet_overview()
    today = timezone.now().date()
    with transaction.atomic():
        # a priority that dropped to zero since the last run today must not keep its old count
        ExposureSnapshot.objects.filter(day=today).delete()
        ExposureSnapshot.objects.bulk_create(
            ExposureSnapshot(day=today, priority=p, machines=n, findings=overview["findings"])
            for p, n in overview["by_priority"].items()
        )
    ctx.log(f"{overview['exposed_machines']} exposed machines")
    return overview["by_priority"]
