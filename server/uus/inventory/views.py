"""Thin UI views for machines: the same MachineFilterSet and selectors as the API and the CLI."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from uus.web.charts import bar_chart
from uus.web.decorators import role_required

from . import selectors, services
from .choices import STATUS_NAMES
from .exceptions import InvalidFilter
from .filters import MachineFilterSet
from .models import Machine

RELEASE_COLORS = ["#2f6fdf", "#2e9d57", "#b58b00", "#8e44ad", "#d64545", "#16a085", "#7f8c8d"]


@login_required
def machine_list(request):
    error = ""
    try:
        fs = MachineFilterSet(request.GET)
        qs = fs.filter(selectors.machine_list())
    except InvalidFilter as exc:
        error, fs = exc.message, MachineFilterSet({})
        qs = fs.filter(selectors.machine_list())
    counts = selectors.machine_counts(qs)
    chart = bar_chart(
        [
            (f"{r['os_id']} {r['release']}".strip() or "unknown", r["n"], RELEASE_COLORS[i % len(RELEASE_COLORS)])
            for i, r in enumerate(counts["releases"])
        ]
    )
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    # the directory comes after inventory in the app order; the OU filter itself asks it the same way
    from uus.directory.selectors import ou_target_choices

    ous = [(value.removeprefix("ou:"), label) for value, label in ou_target_choices()]
    return render(
        request,
        "inventory/machine_list.html",
        {
            "page": page,
            "ous": ous,
            "f": fs.data,
            "counts": counts,
            "chart": chart,
            "error": error,
        },
        status=400 if error else 200,
    )


HISTORY_SHOWN = 20  # newest inventory changes on the machine page; the API and CLI page through all


@login_required
def machine_detail(request, uuid):
    machine = get_object_or_404(Machine.objects.select_related("package_set"), uuid=uuid)
    search = request.GET.get("q", "")
    packages = Paginator(selectors.machine_packages(machine=machine, search=search), 200).get_page(
        request.GET.get("page")
    )
    history = [
        (change, selectors.inventory_change_packages(change))
        for change in selectors.machine_history(machine=machine)[:HISTORY_SHOWN]
    ]
    return render(
        request,
        "inventory/machine_detail.html",
        {
            "machine": machine,
            "page": packages,
            "history": history,
            "q": search,
            "status_names": STATUS_NAMES,
        },
    )


@role_required("admin")
@require_POST
def machine_revoke(request, uuid):
    machine = get_object_or_404(Machine, uuid=uuid)
    services.machine_revoke(machine=machine, user=request.user)
    messages.success(request, f"{machine.hostname} revoked: its agent can no longer check in.")
    return redirect("inventory:machine_detail", uuid=machine.uuid)
