"""Thin UI views: the updates page (pending decisions, bulk approve/decline), the ring board, approval
rules and machine groups (list, create, delete)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from uus.core.exceptions import UusError
from uus.web.decorators import role_required
from uus.web.forms import form_submit

from . import selectors, services
from .choices import ApprovalState
from .exceptions import ApprovalInvalid
from .forms import ApprovalRuleForm, BulkDecisionForm, MachineGroupForm, RingForm


@login_required
def update_list(request):
    rings = list(selectors.ring_list())
    name = request.GET.get("ring") or selectors.DEFAULT_RING
    try:
        ring = selectors.ring_get(name)
    except UusError as exc:
        messages.error(request, exc.message)
        return redirect("approvals:update_list")
    state = request.GET.get("state", "pending")
    kind, min_priority = request.GET.get("kind", ""), request.GET.get("min_priority", "")
    rows = selectors.updates_pending(ring=ring, state="" if state == "all" else state, name=request.GET.get("q", ""))
    try:
        rows = selectors.updates_filter(rows, kind=kind, min_priority=min_priority)
    except UusError as exc:
        messages.error(request, exc.message)
        kind = min_priority = ""
    from uus.catalog.choices import PRIORITIES

    return render(
        request,
        "approvals/update_list.html",
        {
            "rings": rings,
            "ring": ring,
            "state": state,
            "q": request.GET.get("q", ""),
            "rows": rows,
            "states": ["pending", *ApprovalState.values, "all"],
            "kind": kind,
            "kinds": selectors.UPDATE_KINDS,
            "min_priority": min_priority,
            "priorities": PRIORITIES,
            "can_decide": request.user.has_role("operator"),
        },
    )


@role_required("operator")
@require_POST
def update_decide(request):
    form = BulkDecisionForm(request.POST)
    back = reverse("approvals:update_list") + f"?ring={request.POST.get('ring', '')}"
    if not form.is_valid():
        messages.error(request, " ".join(form.non_field_errors()) or "Choose at least one update and a decision.")
        return redirect(back)
    try:
        ring = selectors.ring_get(form.cleaned_data["ring"])
        done = services.approvals_set_bulk(
            ring=ring,
            items=form.pairs(),
            state=form.cleaned_data["state"],
            comment=form.cleaned_data["comment"],
            is_pinned=form.cleaned_data["pin"],
            user=request.user,
        )
    except UusError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    pinned = " and pinned" if form.cleaned_data["pin"] else ""
    messages.success(request, f"{len(done)} updates {form.cleaned_data['state']}{pinned} for ring {ring.name}.")
    return redirect(back)


@login_required
def ring_board(request, form=None, status=200):
    """Each ring with what it has approved and what the ring before it approved that it has not decided."""
    rings = list(selectors.ring_list())
    board = []
    previous = None
    for ring in rings:
        approved = list(selectors.approval_list(ring=ring, state=ApprovalState.APPROVED))
        decided = set(selectors.approval_list(ring=ring).values_list("name", "version"))
        waiting = []
        if previous is not None:
            waiting = [
                a
                for a in selectors.approval_list(ring=previous, state=ApprovalState.APPROVED)
                if (a.name, a.version) not in decided
            ]
        board.append(
            {
                "ring": ring,
                "machines": selectors.ring_machines(ring).count(),
                "approved": approved,
                "declined": selectors.approval_list(ring=ring, state=ApprovalState.DECLINED).count(),
                "waiting": waiting,
                "previous": previous,
            }
        )
        previous = ring
    if form is None and request.user.has_role("admin"):
        form = RingForm()
    ctx = {"board": board, "can_decide": request.user.has_role("operator"), "form": form}
    return render(request, "approvals/ring_board.html", ctx, status=status)


@role_required("admin")
@require_POST
def ring_create(request):
    form = RingForm(request.POST)
    ring = form_submit(form, lambda: services.ring_create(**form.cleaned_data, user=request.user))
    if ring is None:
        return ring_board(request, form=form, status=400)
    messages.success(request, f"ring {ring.name} created at position {ring.position}")
    return redirect("approvals:ring_board")


@role_required("operator")
@require_POST
def ring_promote(request, name):
    try:
        to_ring = selectors.ring_get(name)
        from_ring = selectors.ring_get(request.POST.get("from", ""))
        out = services.ring_promote(ring=from_ring, to_ring=to_ring, user=request.user)
    except UusError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{len(out)} versions promoted from {from_ring.name} to {to_ring.name}.")
    return redirect("approvals:ring_board")


@role_required("operator")
@require_POST
def ring_members(request, name):
    """Move the machines named (hostnames, spaces between) into this ring: all of them or none."""
    from django.db import transaction

    from uus.inventory.selectors import machine_get

    hostnames = request.POST.get("machines", "").replace(",", " ").split()
    try:
        ring = selectors.ring_get(name)
        if not hostnames:
            raise ApprovalInvalid("name at least one machine to move")
        with transaction.atomic():
            for h in hostnames:
                services.machine_set_ring(
                    machine=machine_get(ident=h), ring=ring, user=request.user, reason=request.POST.get("reason", "")
                )
    except UusError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{len(hostnames)} machines moved to ring {ring.name}.")
    return redirect("approvals:ring_board")


# -- approval rules ---------------------------------------------------------------------------------


def _rule_page(request, form, status=200):
    ctx = {"rules": selectors.rule_list(), "form": form, "can_edit": request.user.has_role("operator")}
    return render(request, "approvals/rule_list.html", ctx, status=status)


@login_required
def rule_list(request):
    return _rule_page(request, ApprovalRuleForm() if request.user.has_role("operator") else None)


@role_required("operator")
@require_POST
def rule_create(request):
    form = ApprovalRuleForm(request.POST)
    rule = form_submit(form, lambda: services.approval_rule_create(**form.service_kwargs(), user=request.user))
    if rule is None:
        return _rule_page(request, form, status=400)
    messages.success(request, f"rule {rule.pk} created: {rule}")
    return redirect("approvals:rule_list")


@role_required("operator")
@require_POST
def rule_delete(request, pk):
    try:
        rule = selectors.rule_get(pk)
        services.approval_rule_delete(rule=rule, user=request.user)
    except UusError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"rule {pk} deleted: {rule}")
    return redirect("approvals:rule_list")


# -- machine groups ---------------------------------------------------------------------------------


def _group_page(request, form, status=200):
    groups = [(g, selectors.group_machines(g).count()) for g in selectors.group_list()]
    ctx = {"groups": groups, "form": form, "can_edit": request.user.has_role("operator")}
    return render(request, "approvals/group_list.html", ctx, status=status)


@login_required
def group_list(request):
    return _group_page(request, MachineGroupForm() if request.user.has_role("operator") else None)


@role_required("operator")
@require_POST
def group_create(request):
    form = MachineGroupForm(request.POST)
    group = form_submit(form, lambda: services.group_create(**form.service_kwargs(), user=request.user))
    if group is None:
        return _group_page(request, form, status=400)
    messages.success(request, f"group {group.name} created")
    return redirect("approvals:group_list")


@role_required("operator")
@require_POST
def group_delete(request, name):
    try:
        services.group_delete(group=selectors.group_get(name), user=request.user)
    except UusError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"group {name} deleted")
    return redirect("approvals:group_list")
