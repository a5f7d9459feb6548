"""Reads of the catalog, shared by the API, the UI and the CLI."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from .choices import priority_rank
from .models import AffectedPackage, ArchivePackage, Cve, Notice, NoticeCve


def notice_list(
    *, release: str = "", priority: str = "", package: str = "", q: str = "", since=None, until=None, kind: str = ""
) -> QuerySet[Notice]:
    """Notices filtered the same way everywhere: by release, least priority, source/binary package,
    published window, and a search that matches a notice id, a CVE id or words of the summary."""
    qs = Notice.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    if release:
        qs = qs.filter(affected__release=release)
    if priority:
        qs = qs.filter(priority_rank__gte=priority_rank(priority))
    if package:
        qs = qs.filter(Q(affected__source=package) | Q(affected__binaries__icontains=f'"{package}"'))
    if since:
        qs = qs.filter(published__gte=since)
    if until:
        qs = qs.filter(published__lt=until)
    if q:
        q = q.strip()
        if q.upper().startswith(("USN-", "LSN-", "UBUNTU-CVE-")):
            qs = qs.filter(pk__iexact=q)
        elif q.upper().startswith("CVE-"):
            qs = qs.filter(cves__id__iexact=q)
        else:
            qs = qs.filter(Q(summary__icontains=q) | Q(affected__source=q))
    return qs.distinct().order_by("-published", "-id")


def notice_get(notice_id: str) -> Notice:
    return Notice.objects.prefetch_related(
        Prefetch("noticecve_set", queryset=NoticeCve.objects.select_related("cve").order_by("position")),
        Prefetch("affected", queryset=AffectedPackage.objects.order_by("release", "ecosystem", "source")),
    ).get(pk=notice_id)


def cve_get(cve_id: str) -> Cve:
    return Cve.objects.get(pk__iexact=cve_id)


def cve_fixes(cve: Cve) -> QuerySet[AffectedPackage]:
    """Every affected entry of every notice naming the CVE, per release: which version fixes it where."""
    return (
        AffectedPackage.objects.filter(notice__cves=cve)
        .select_related("notice")
        .order_by("release", "source", "is_pro", "notice__published")
    )


def package_versions(name: str) -> QuerySet[ArchivePackage]:
    """A binary or source package's versions per upstream, suite and pocket."""
    return (
        ArchivePackage.objects.filter(Q(name=name) | Q(source=name))
        .select_related("index", "index__upstream")
        .order_by("index__upstream__name", "index__codename", "name", "architecture", "-version_key")
    )


def notice_counts_by_priority() -> dict[str, int]:
    return dict(Notice.objects.values_list("priority").annotate(n=Count("pk")).order_by())
