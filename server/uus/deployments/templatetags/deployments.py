"""`{% load deployments %}{% machine_jobs machine %}`: a machine's recent jobs, for the machine page."""

from django import template

from ..selectors import machine_jobs as jobs_of

register = template.Library()


@register.inclusion_tag("deployments/_machine_jobs.html")
def machine_jobs(machine, limit: int = 10):
    return {"machine": machine, "jobs": list(jobs_of(machine)[:limit])}
