"""Exposure sections other apps' pages include without importing exposure in their views:
`{% machine_exposure machine %}` (machine detail) and `{% exposure_dashboard %}` (dashboard tiles)."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.db.models import Sum
from django.utils import timezone

from uus.web.charts import bar_chart

from .. import selectors
from ..models import ExposureSnapshot
from ..presentation import PRIORITY_COLORS, STATUS_LABELS, by_priority

register = template.Library()
TREND_DAYS = 30


@register.inclusion_tag("exposure/_machine_exposure.html", takes_context=True)
def machine_exposure(context, machine):
    every = context.get("request") and context["request"].GET.get("kernels") == "all"
    rows = selectors.findings(selectors.Query(machine_id=machine.pk, label=machine.hostname), include_not_running=True)
    exposed = [r for r in rows if r["status"] != selectors.Status.NOT_RUNNING]
    apart = [r for r in rows if r["status"] == selectors.Status.NOT_RUNNING]
    summary = selectors.summary(exposed)
    return {
        "machine": machine,
        "groups": by_priority(exposed),
        "summary": summary,
        # findings per status (the summary counts machines, and this is one machine)
        "statuses": [
            (STATUS_LABELS.get(st, st), sum(1 for r in exposed if r["status"] == st)) for st in summary["by_status"]
        ],
        "not_running": by_priority(apart) if every else [],
        "not_running_count": len(apart),
    }


@register.inclusion_tag("exposure/_dashboard_tiles.html")
def exposure_dashboard():
    overview = selectors.fleet_overview(top=10)
    since = timezone.now().date() - timedelta(days=TREND_DAYS)
    trend = list(
        ExposureSnapshot.objects.filter(day__gte=since)
        .values_list("day")
        .annotate(machines=Sum("machines"))
        .order_by("day")
    )
    return {
        "overview": overview,
        "priority_chart": bar_chart([(p, n, PRIORITY_COLORS[p]) for p, n in overview["by_priority"].items()]),
        "notice_chart": bar_chart([(n, m, "#2f6fdf") for n, m in overview["top_notices"]]),
        "trend_chart": bar_chart([(d.strftime("%Y-%m-%d"), m, "#6b7280") for d, m in trend]),
    }
