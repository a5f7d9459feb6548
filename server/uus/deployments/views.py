"""Thin UI views: deployments with live per-machine progress, and the jobs of one machine."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from uus.core.exceptions import UusError
from uus.inventory.models import Machine
from uus.web.decorators import role_required
from uus.web.forms import form_submit

from . import selectors, services
from .choices import ACTIVE_DEPLOYMENT_STATES, OPEN_JOB_STATES
from .forms import DeploymentForm, WindowForm
from .models import MachineJob


def _list_page(request, *, form=None, window_form=None, status=200):
    page = Paginator(selectors.deployment_list(state=request.GET.get("state", "")), 50).get_page(
        request.GET.get("page")
    )
    if request.user.has_role("operator"):
        form, window_form = form or DeploymentForm(), window_form or WindowForm()
    ctx = {"page": page, "form": form, "window_form": window_form, "windows": selectors.window_list()}
    return render(request, "deployments/deployment_list.html", ctx, status=status)


@login_required
def deployment_list(request):
    return _list_page(request)


@role_required("operator")
@require_POST
def window_create(request):
    form = WindowForm(request.POST)
    window = form_submit(form, lambda: services.window_create(**form.service_kwargs(), user=request.user))
    if window is None:
        return _list_page(request, window_form=form, status=400)
    messages.success(request, f"maintenance window {window.name} created")
    return redirect("deployments:deployment_list")


@role_required("operator")
@require_POST
def deployment_create(request):
    form = DeploymentForm(request.POST)
    deployment = form_submit(form, lambda: services.deployment_create(**form.service_kwargs(), user=request.user))
    if deployment is None:
        return _list_page(request, form=form, status=400)
    messages.success(request, f"deployment {deployment.pk} created for {deployment.target}")
    return redirect("deployments:deployment_detail", deployment.pk)


def _progress_context(deployment) -> dict:
    return {
        "d": deployment,
        "counts": selectors.deployment_counts(deployment),
        "jobs": selectors.deployment_progress_jobs(deployment),
        "rows_limit": selectors.PROGRESS_ROWS,
        "is_live": deployment.state in ACTIVE_DEPLOYMENT_STATES,
    }


@login_required
def deployment_detail(request, pk):
    deployment = selectors.deployment_get(pk)
    ctx = _progress_context(deployment)
    ctx["can_act"] = request.user.has_role("operator")
    return render(request, "deployments/deployment_detail.html", ctx)


@login_required
def deployment_progress(request, pk):
    """The per-machine table alone, polled by the deployment page while it runs."""
    return render(request, "deployments/_progress.html", _progress_context(selectors.deployment_get(pk)))


@role_required("operator")
@require_POST
def deployment_action(request, pk, verb):
    deployment = selectors.deployment_get(pk)
    fn = {
        "cancel": services.deployment_cancel,
        "retry": services.deployment_retry,
        "rollback": services.deployment_rollback,
    }
    if verb not in fn:
        return redirect("deployments:deployment_detail", pk=pk)
    try:
        out = fn[verb](deployment=deployment, user=request.user, reason=request.POST.get("reason", ""))
    except UusError as exc:
        messages.error(request, exc.message)
        return redirect("deployments:deployment_detail", pk=pk)
    messages.success(request, f"deployment {deployment.pk}: {verb} done.")
    return redirect("deployments:deployment_detail", pk=out.pk)


@login_required
def machine_jobs(request, uuid):
    machine = get_object_or_404(Machine, uuid=uuid)
    jobs = selectors.machine_jobs(machine)[:200]
    return render(request, "deployments/machine_jobs.html", {"machine": machine, "jobs": jobs})


def _job_context(pk) -> dict:
    job = get_object_or_404(MachineJob.objects.select_related("machine", "deployment"), pk=pk)
    return {"job": job, "is_live": job.state in OPEN_JOB_STATES}


@login_required
def job_detail(request, pk):
    return render(request, "deployments/job_detail.html", _job_context(pk))


@login_required
def job_status(request, pk):
    """The job's result and apt output alone, polled by the job page until a result arrives."""
    return render(request, "deployments/_job.html", _job_context(pk))
