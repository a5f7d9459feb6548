"""Directory pages: sources with their status, add/edit, test/sync/dry run, role mappings, OU tree.
Thin: selectors in, one service per action, template out."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from uus.core.exceptions import UusError
from uus.jobs.models import Job
from uus.jobs.services import dispatch
from uus.web.decorators import role_required

from . import selectors, services, tasks
from .forms import DirectorySourceForm, RoleMappingForm
from .models import DirectorySource, RoleMapping


def _service_error(form, exc: UusError) -> None:
    """Put a service error next to the field it is about, or above the form."""
    placed = False
    for field_name in exc.details or {}:
        name = "start_tls" if field_name == "start_tls" else field_name
        if name in form.fields:
            form.add_error(name, exc.message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


@login_required
def source_list(request):
    return render(
        request,
        "directory/source_list.html",
        {"sources": selectors.directory_source_list().prefetch_related("role_mappings")},
    )


@role_required("admin")
@sensitive_post_parameters("bind_password")
def source_add(request):
    form = DirectorySourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            source = services.directory_source_create(**form.service_kwargs())
        except UusError as exc:
            _service_error(form, exc)
        else:
            messages.success(request, f"Directory {source.name} added. Test the connection, then sync.")
            return redirect("directory:source_detail", name=source.name)
    return render(request, "directory/source_form.html", {"form": form, "source": None})


@role_required("admin")
@sensitive_post_parameters("bind_password")
def source_edit(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    form = DirectorySourceForm(request.POST or None, initial=DirectorySourceForm.initial_from(source), editing=True)
    if request.method == "POST" and form.is_valid():
        kwargs = form.service_kwargs()
        kwargs.pop("name", None)
        kwargs["bind_password"] = kwargs.get("bind_password") or None  # blank keeps the stored one
        try:
            services.directory_source_update(source=source, **kwargs)
        except UusError as exc:
            source.refresh_from_db()
            _service_error(form, exc)
        else:
            messages.success(request, f"Directory {source.name} saved.")
            return redirect("directory:source_detail", name=source.name)
    return render(request, "directory/source_form.html", {"form": form, "source": source})


@login_required
def source_detail(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    return render(
        request,
        "directory/source_detail.html",
        {
            "source": source,
            "mappings": selectors.role_mapping_list(source=source),
            "mapping_form": RoleMappingForm(),
            "groups": source.groups.order_by("name")[:1000],
            "ous": source.ous.order_by("sort_key")[:2000],
            "jobs": selectors.sync_jobs_recent(source),
            "dry_run": selectors.dry_run_latest(source),
            "unmatched_machines": selectors.machines_unmatched().count(),
            "unmatched_computers": selectors.computers_unmatched(source=source).count(),
        },
    )


@role_required("admin")
@require_POST
def source_delete(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    services.directory_source_delete(source=source)
    messages.success(request, f"Directory {name} removed; people who logged in through it are deactivated.")
    return redirect("directory:source_list")


@role_required("admin")
@require_POST
def source_test(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    job = dispatch(tasks.directory_test, kwargs={"name": source.name}, user=request.user)
    return redirect("web:job_detail", pk=job.pk)


@role_required("admin")
@require_POST
def source_sync(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    dry_run = request.POST.get("dry_run") == "1"
    job = dispatch(
        tasks.directory_sync,
        kwargs={"name": source.name, "dry_run": dry_run},
        user=request.user,
        locks=[tasks.sync_lock(source.name)],
    )
    if dry_run:
        return redirect(f"{reverse('directory:dry_run', args=[source.name])}?job={job.pk}")
    return redirect("web:job_detail", pk=job.pk)


def _dry_run_job(source, job_id: str | None) -> Job | None:
    if job_id:
        job = Job.objects.filter(pk=job_id, name=selectors.SYNC_JOB, kwargs__name=source.name).first()
        if job is None:
            raise Http404("no such dry run")
        return job
    return selectors.dry_run_latest(source)


@login_required
def dry_run(request, name):
    """The latest dry run of a source: what a sync would change, shown once the job has finished."""
    source = get_object_or_404(DirectorySource, name=name)
    job = _dry_run_job(source, request.GET.get("job"))
    return render(request, "directory/dry_run.html", {"source": source, "job": job})


@login_required
def dry_run_status(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    job = _dry_run_job(source, request.GET.get("job"))
    return render(request, "directory/_dry_run_result.html", {"source": source, "job": job})


@role_required("admin")
@require_POST
def mapping_add(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    form = RoleMappingForm(request.POST)
    if form.is_valid():
        try:
            mapping = services.role_mapping_set(source=source, **form.cleaned_data)
        except UusError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Members of {mapping.group_dn} are now {mapping.get_role_display()}s.")
    else:
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect("directory:source_detail", name=source.name)


@role_required("admin")
@require_POST
def mapping_delete(request, name, pk):
    mapping = get_object_or_404(RoleMapping, pk=pk, source__name=name)
    services.role_mapping_delete(mapping=mapping)
    messages.success(request, f"Mapping of {mapping.group_dn} removed.")
    return redirect("directory:source_detail", name=name)


#: Per-OU columns of other apps for the OU tree: (css class, heading, fn) where ``fn(placements)``
#: returns ``{ou_id: number}`` for the whole tree at once (see selectors.ou_tree); OUs left out show 0.
OU_TREE_COLUMNS: list[tuple[str, str, Callable]] = [
    ("exposed-count", "Exposed machines (incl. sub-OUs)", selectors.ou_exposed_machine_counts),
]


@login_required
def ou_list(request):
    source = request.GET.get("source", "")

    def extra(placements):
        values: dict[int, dict] = {}
        for css, _heading, fn in OU_TREE_COLUMNS:
            for ou_id, value in fn(placements).items():
                values.setdefault(ou_id, {})[css] = value
        return values

    nodes = selectors.ou_tree(source=source or None, extra=extra if OU_TREE_COLUMNS else None)
    return render(
        request,
        "directory/ou_tree.html",
        {
            "rows": [(n, [(css, n.extra.get(css, 0)) for css, _h, _fn in OU_TREE_COLUMNS]) for n in nodes],
            "extra_columns": [heading for _css, heading, _fn in OU_TREE_COLUMNS],
            "sources": selectors.directory_source_list(),
            "source": source,
        },
    )


@login_required
def unmatched(request, name):
    source = get_object_or_404(DirectorySource, name=name)
    return render(
        request,
        "directory/unmatched.html",
        {
            "source": source,
            "machines": selectors.machines_unmatched().order_by("hostname")[:2000],
            "computers": selectors.computers_unmatched(source=source).order_by("hostname")[:2000],
        },
    )
