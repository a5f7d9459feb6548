"""Exposure pages: the search result (CVE, notice or package) with its charts, machine list and CSV."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render

from uus.core.exceptions import UusError
from uus.inventory.models import Machine
from uus.web.charts import bar_chart

from . import selectors
from .presentation import PRIORITY_COLORS, STATUS_COLORS, STATUS_LABELS, machine_cards

PAGE = 100


class _Echo:
    def write(self, value):
        return value


def _csv(rows: list[dict], label: str) -> StreamingHttpResponse:
    from uus.cli.exposure import CSV_FIELDS

    writer = csv.DictWriter(_Echo(), fieldnames=CSV_FIELDS, extrasaction="ignore")
    lines = [writer.writeheader(), *(writer.writerow(r) for r in rows)]
    name = "".join(c if c.isalnum() or c in "-." else "_" for c in label)[:80] or "exposure"
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exposure-{name}.csv"'
    return response


@login_required
def search(request):
    text = request.GET.get("q", "").strip()
    context = {"exposure_q": text, "error": ""}
    if not text:
        return render(request, "exposure/search.html", context)
    try:
        q = selectors.parse_query(text)
        page = max(int(request.GET.get("page") or 1), 1)
    except UusError as exc:
        return render(request, "exposure/search.html", {**context, "error": exc.message}, status=400)
    except ValueError:
        return render(request, "exposure/search.html", {**context, "error": "page must be a number"}, status=400)
    every = request.GET.get("all") == "1"
    if request.GET.get("format") == "csv":
        return _csv(selectors.findings(q, include_not_running=every), q.label)
    result = selectors.search(q, limit=PAGE, offset=(page - 1) * PAGE, include_not_running=every, count_fixed=True)
    s = result["summary"]
    uuids = dict(Machine.objects.filter(pk__in={r["machine_id"] for r in result["findings"]}).values_list("pk", "uuid"))
    status_rows = [(STATUS_LABELS[k], v, STATUS_COLORS[k]) for k, v in s["by_status"].items()]
    if "fixed" in s:
        status_rows.append((STATUS_LABELS["fixed"], s["fixed"], STATUS_COLORS["fixed"]))
    return render(
        request,
        "exposure/search.html",
        {
            **context,
            "query": q,
            "summary": s,
            "priority_chart": bar_chart([(p, n, PRIORITY_COLORS[p]) for p, n in s["by_priority"].items()]),
            "status_chart": bar_chart(status_rows),
            "machines": machine_cards(result["findings"], uuids),
            "page": page,
            "has_next": len({r["machine_id"] for r in result["findings"]}) >= PAGE,
            "every": every,
        },
    )
