"""`{% load deployments %}{% machine_jobs machine %}`: a machine's recent jobs, for the machine page;
`{{ job.output|tail:20 }}` and `{{ job.output|last_line }}` for the deployment page's log column."""

from django import template

from ..selectors import machine_jobs as jobs_of

register = template.Library()


@register.inclusion_tag("deployments/_machine_jobs.html")
def machine_jobs(machine, limit: int = 10):
    return {"machine": machine, "jobs": list(jobs_of(machine)[:limit])}


@register.filter
def tail(text: str, lines: int = 20) -> str:
    return "\n".join((text or "").rstrip("\n").splitlines()[-int(lines) :])


@register.filter
def last_line(text: str) -> str:
    rows = [r for r in (text or "").splitlines() if r.strip()]
    return rows[-1][:160] if rows else ""
