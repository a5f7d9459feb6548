"""Catalog pages: notices, notice, CVE, package, upstreams. Thin: selectors in, template out."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from uus.core.exceptions import UusError
from uus.jobs.services import dispatch
from uus.web.charts import bar_chart
from uus.web.decorators import role_required

from . import selectors, tasks
from .choices import PRIORITIES, NoticeKind
from .models import Cve, Notice, Upstream

PRIORITY_COLORS = {
    "critical": "#7f1d1d",
    "high": "#d64545",
    "medium": "#e08a1e",
    "low": "#3b82f6",
    "negligible": "#9ca3af",
    "": "#d1d5db",
}


@login_required
def notice_list(request):
    f = {k: request.GET.get(k, "").strip() for k in ("release", "priority", "package", "q", "kind", "since", "until")}
    error = ""
    try:
        qs = selectors.notice_list(**f).prefetch_related("cves")
        page = Paginator(qs, 50).get_page(request.GET.get("page"))
    except UusError as exc:  # a date or priority that means nothing: say so, list nothing
        error, page = exc.message, Paginator(Notice.objects.none(), 50).get_page(1)
    counts = selectors.notice_counts_by_priority()
    chart = bar_chart([(p, counts.get(p, 0), PRIORITY_COLORS[p]) for p in reversed(PRIORITIES)])
    context = {"page": page, "f": f, "priorities": PRIORITIES, "chart": chart, "error": error}
    context["kinds"] = NoticeKind.choices
    return render(request, "catalog/notice_list.html", context)


@login_required
def notice_detail(request, pk):
    try:
        notice = selectors.notice_get(pk)
    except Notice.DoesNotExist:
        return render(request, "catalog/missing.html", {"what": f"notice {pk}"}, status=404)
    return render(request, "catalog/notice_detail.html", {"notice": notice})


@login_required
def cve_detail(request, pk):
    cve = get_object_or_404(Cve, pk__iexact=pk)
    return render(request, "catalog/cve_detail.html", {"cve": cve, "fixes": selectors.cve_fixes(cve)})


@login_required
def package_detail(request, name):
    versions = selectors.package_versions(name)[:500]
    notices = selectors.notice_list(package=name)[:50]
    return render(request, "catalog/package_detail.html", {"name": name, "versions": versions, "notices": notices})


@login_required
def upstream_list(request):
    return render(request, "catalog/upstream_list.html", {"upstreams": Upstream.objects.prefetch_related("indexes")})


@role_required("admin")
@require_POST
def upstream_sync(request, name):
    upstream = get_object_or_404(Upstream, name=name)
    job = dispatch(
        tasks.upstream_sync, kwargs={"name": upstream.name}, user=request.user, locks=[f"upstream:{upstream.name}"]
    )
    return redirect("web:job_detail", pk=job.pk)
