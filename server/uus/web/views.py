"""Thin UI views: each reads through selectors or calls one service, then renders."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from uus.accounts import services as account_services
from uus.accounts.models import User
from uus.core.exceptions import UusError
from uus.inventory import services as inventory_services
from uus.inventory.models import EnrollmentToken
from uus.jobs import services as job_services
from uus.jobs.models import Job
from uus.jobs.tasks import selftest
from uus.repos.agent_package import agent_package_current

from .charts import bar_chart
from .decorators import role_required
from .forms import EnrollmentTokenForm, LoginForm, UserCreateForm

STATE_COLORS = {
    "queued": "#8a8f98",
    "running": "#2f6fdf",
    "succeeded": "#2e9d57",
    "failed": "#d64545",
    "canceled": "#b58b00",
}


def healthz(request):
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    except Exception as exc:
        return JsonResponse({"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def login_view(request):
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user = account_services.login_authenticate(
                request=request, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
            )
        except UusError as exc:
            user, error = None, exc.message
        if user is not None:
            login(request, user)
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "web:dashboard"
            return redirect(target or "web:dashboard")
        error = error or "Wrong user name or password."
    status = 200 if not error else (429 if "too many" in error else 401)
    return render(request, "web/login.html", {"form": form, "error": error}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("web:login")


@login_required
def dashboard(request):
    counts = dict(Job.objects.values_list("state").annotate(n=Count("pk")).order_by())
    chart = bar_chart([(s, counts.get(s, 0), c) for s, c in STATE_COLORS.items()])
    recent = Job.objects.defer("log").order_by("-created")[:10]
    return render(
        request,
        "web/dashboard.html",
        {
            "job_chart": chart,
            "recent_jobs": recent,
            "token_count": EnrollmentToken.objects.filter(is_revoked=False).count(),
        },
    )


@login_required
def job_list(request):
    state = request.GET.get("state", "")
    jobs = Job.objects.defer("log").order_by("-created")
    if state:
        jobs = jobs.filter(state=state)
    return render(request, "web/job_list.html", {"jobs": jobs[:200], "state": state, "states": STATE_COLORS})


@login_required
def job_detail(request, pk):
    job = get_object_or_404(Job, pk=pk)
    return render(request, "web/job_detail.html", {"job": job})


@login_required
def job_status(request, pk):
    """The live part of a job page, polled by the page until the job finishes."""
    job = get_object_or_404(Job, pk=pk)
    return render(request, "web/_job_status.html", {"job": job})


@role_required("admin")
@require_POST
def job_selftest(request):
    job = job_services.dispatch(selftest, kwargs={"steps": 10, "delay": 0.5}, user=request.user)
    return redirect("web:job_detail", pk=job.pk)


@role_required("operator")
@require_POST
def job_cancel(request, pk):
    job = get_object_or_404(Job, pk=pk)
    try:
        job_services.job_cancel(job=job)
    except UusError as exc:
        messages.error(request, exc.message)
    return redirect("web:job_detail", pk=job.pk)


@login_required
def enrollment(request):
    form = EnrollmentTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST":
        if not request.user.has_role("admin"):
            return render(request, "web/403.html", status=403)
        if form.is_valid():
            try:
                _, new_key = inventory_services.enrollment_token_create(
                    comment=form.cleaned_data["comment"],
                    group=form.cleaned_data["group"],
                    expires=inventory_services.parse_expiry(form.cleaned_data["expires"]),
                    max_uses=form.cleaned_data["max_uses"],
                    user=request.user,
                )
                form = EnrollmentTokenForm()
            except UusError as exc:
                form.add_error(None, exc.message)
    tokens = EnrollmentToken.objects.order_by("-created")[:200]
    return render(
        request,
        "web/enrollment.html",
        {
            "form": form,
            "tokens": tokens,
            "new_key": new_key,
            "server_url": settings.UUS["base_url"].rstrip("/") or request.build_absolute_uri("/").rstrip("/"),
            "agent_package": agent_package_current(),
        },
    )


@role_required("admin")
@require_POST
def enrollment_revoke(request, pk):
    inventory_services.enrollment_token_revoke(token=get_object_or_404(EnrollmentToken, pk=pk))
    messages.success(request, "Token revoked.")
    return redirect("web:enrollment")


@role_required("admin")
def user_list(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account_services.user_create(**form.cleaned_data)
            messages.success(request, f"User {form.cleaned_data['username']} created.")
            return redirect("web:user_list")
        except UusError as exc:
            form.add_error(None, exc.message)
    return render(request, "web/user_list.html", {"form": form, "users": User.objects.order_by("username")})
