"""MachineFilterSet: the one meaning of every machine filter, for /api/v1/machines/, the machines page
and `uus machines list`. Each takes its parameters from a mapping of strings (query string, form or
command-line options), so the three can never disagree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from uus.core.debversion import InvalidVersion, parse_version

from .exceptions import InvalidFilter
from .filter_params import ORDERINGS, PARAMS
from .models import Machine
from .selectors import machines_with_packages, packages_matching, stale_before

_AGO_RE = re.compile(r"(\d+)\s*([dhm])")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_VERSION_OPS = ("version", "version_gte", "version_gt", "version_lte", "version_lt")


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InvalidFilter(f"{name} must be true or false, got {value!r}", details={name: "not a boolean"})


def _time(name: str, value: str) -> datetime:
    text = value.strip()
    m = _AGO_RE.fullmatch(text)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return timezone.now() - timedelta(**{unit: int(m.group(1))})
    when = parse_datetime(text)
    if when is None:
        raise InvalidFilter(
            f"{name}: cannot read {value!r}; use an ISO 8601 time or 7d, 12h, 30m", details={name: "not a time"}
        )
    return when if timezone.is_aware(when) else timezone.make_aware(when, UTC)


class MachineFilterSet:
    """`MachineFilterSet(params).filter(queryset)`; unknown parameters are ignored (pagination etc.),
    bad values raise InvalidFilter (400 in the API, a message in the UI, an error in the CLI)."""

    params = PARAMS

    def __init__(self, data: Mapping[str, str] | None = None):
        data = data or {}
        self.data: dict[str, str] = {}
        for p in PARAMS:
            value = data.get(p.name)
            if value is None or str(value).strip() == "":
                continue
            self.data[p.name] = str(value).strip()
        self.cleaned = self._clean()

    def _clean(self) -> dict:
        out: dict = {}
        for p in PARAMS:
            if p.name not in self.data:
                continue
            value = self.data[p.name]
            if p.kind == "bool":
                out[p.name] = _bool(p.name, value)
            elif p.kind == "time":
                out[p.name] = _time(p.name, value)
            elif p.kind == "version":
                try:
                    parse_version(value)
                except InvalidVersion as exc:
                    raise InvalidFilter(f"{p.name}: {exc.message}", details={p.name: exc.reason}) from None
                out[p.name] = value
            elif p.kind == "choice":
                if value not in ORDERINGS:
                    raise InvalidFilter(f"ordering must be one of {', '.join(ORDERINGS)}", details={p.name: value})
                out[p.name] = value
            else:
                out[p.name] = value
        if any(op in out for op in _VERSION_OPS) and not (out.get("package") or out.get("source")):
            raise InvalidFilter("version filters need package or source", details={"version": "needs package"})
        return out

    @property
    def is_bound(self) -> bool:
        return bool(self.cleaned)

    def filter(self, qs: QuerySet[Machine]) -> QuerySet[Machine]:
        c = self.cleaned
        if "q" in c:
            qs = qs.filter(Q(hostname__icontains=c["q"]) | Q(fqdn__icontains=c["q"]))
        if "hostname" in c:
            qs = qs.filter(hostname=c["hostname"])
        if "release" in c:
            qs = qs.filter(release__in=[r.strip() for r in c["release"].split(",") if r.strip()])
        if "os" in c:
            qs = qs.filter(os_id=c["os"])
        if "architecture" in c:
            qs = qs.filter(architecture=c["architecture"])
        if "group" in c:
            qs = qs.filter(enrollment_group=c["group"])
        if "ou" in c:
            from uus.directory.selectors import machines_in_ou

            qs = machines_in_ou(c["ou"], queryset=qs)
        if "package" in c or "source" in c:
            packages = packages_matching(
                name=c.get("package", ""), source=c.get("source", ""), **{op: c.get(op) for op in _VERSION_OPS}
            )
            qs = machines_with_packages(qs, packages)
        if "needs_reboot" in c:
            qs = qs.filter(is_reboot_required=c["needs_reboot"])
        if "stale" in c:
            stale = Q(last_seen__lt=stale_before()) | Q(last_seen__isnull=True)
            qs = qs.filter(stale) if c["stale"] else qs.exclude(stale)
        if "revoked" in c:
            qs = qs.filter(is_revoked=c["revoked"])
        if "clone_suspected" in c:
            qs = qs.filter(is_clone_suspected=c["clone_suspected"])
        if "last_seen_before" in c:
            qs = qs.filter(last_seen__lt=c["last_seen_before"])
        if "last_seen_after" in c:
            qs = qs.filter(last_seen__gte=c["last_seen_after"])
        return qs.order_by(*ORDERINGS[c.get("ordering", "hostname")])
