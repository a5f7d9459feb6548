"""Reads of the catalog, shared by the API, the UI and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from uus.core.exceptions import UusError

from .choices import PRIORITIES, priority_rank
from .models import AffectedPackage, ArchivePackage, Cve, Notice, NoticeCve


def _bound(value, name: str, *, upper: bool) -> tuple[str, datetime]:
    """("gte"|"lt"|"lte", moment) for a datetime, a date or ISO text. A bare date is a whole UTC day,
    so that "until 2024-03-27" includes that day (published before the next midnight)."""
    moment = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        day = value
    else:
        text = str(value).strip()
        try:  # a bare date first: parse_datetime would take it as midnight
            day = parse_date(text)
            moment = parse_datetime(text) if day is None else None
        except ValueError:
            day = None
        if moment is None and day is None:
            raise UusError(f"{name} {text!r} is not a date (YYYY-MM-DD) or an ISO date and time", code="invalid")
    if moment is not None:
        return ("lte" if upper else "gte"), (moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return ("lt", start + timedelta(days=1)) if upper else ("gte", start)


def notice_list(
    *, release: str = "", priority: str = "", package: str = "", q: str = "", since=None, until=None, kind: str = ""
) -> QuerySet[Notice]:
    """Notices filtered the same way everywhere: by release (number, codename or ecosystem), least
    priority, source/binary package, published window (`since` on or after, `until` on or before;
    dates are whole days, UTC), and a search that matches a notice id, a CVE id or summary words."""
    qs = Notice.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    if release:  # "22.04", "jammy" or the ecosystem "Ubuntu:Pro:22.04:LTS"
        qs = qs.filter(Q(affected__release=release) | Q(affected__codename=release) | Q(affected__ecosystem=release))
    if priority:
        if priority not in PRIORITIES:
            raise UusError(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}", code="invalid")
        qs = qs.filter(priority_rank__gte=priority_rank(priority))
    if package:
        qs = qs.filter(Q(affected__source=package) | Q(affected__binaries__icontains=f'"{package}"'))
    for name, value, upper in (("since", since, False), ("until", until, True)):
        if value:
            lookup, moment = _bound(value, name, upper=upper)
            qs = qs.filter(**{f"published__{lookup}": moment})
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
