"""The deployment form of the web UI: the same choices as `uus deployments create`, with every ring,
group and directory OU offered as a target."""

from __future__ import annotations

from django import forms

from uus.approvals import selectors as approvals
from uus.directory.selectors import ou_target_choices

from . import selectors
from .choices import DeploymentAction


def target_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped choices for a target select: rings, groups, OUs (each OU includes the OUs below it)."""
    groups = [
        ("Rings", [(f"ring:{r.name}", r.name) for r in approvals.ring_list()]),
        ("Groups", [(f"group:{g.name}", g.name) for g in approvals.group_list()]),
        ("Organizational units", ou_target_choices()),
    ]
    return [("", "machines, below")] + [g for g in groups if g[1]]


class DeploymentForm(forms.Form):
    target = forms.ChoiceField(required=False)
    machine = forms.CharField(
        required=False, max_length=2000, label="Machines", help_text="hostnames (spaces between), not a target"
    )
    action = forms.ChoiceField(
        choices=[(v, label) for v, label in DeploymentAction.choices if v != DeploymentAction.ROLLBACK]
    )
    packages = forms.CharField(required=False, help_text="name or name=version, separated by spaces")
    at = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    deadline = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    window = forms.ChoiceField(required=False)
    batch_size = forms.IntegerField(required=False, min_value=0, help_text="machines at once; empty = all")
    failure_threshold = forms.IntegerField(
        required=False, min_value=1, max_value=100, help_text="halt at this % of failed jobs"
    )
    comment = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = target_choices()
        self.fields["window"].choices = [("", "none: as soon as it starts")] + [
            (w.name, w.name) for w in selectors.window_list()
        ]

    def clean(self):
        data = super().clean()
        target, machines = data.get("target"), (data.get("machine") or "").replace(",", " ").split()
        if bool(target) == bool(machines):
            raise forms.ValidationError("choose a ring, group or OU, or type machines' hostnames (not both)")
        data["target"] = target or f"machine:{','.join(machines)}"
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "target": d["target"],
            "action": d["action"],
            "packages": (d.get("packages") or "").split(),
            "at": d.get("at"),
            "deadline": d.get("deadline"),
            "window": selectors.window_get(d["window"]) if d.get("window") else None,
            "batch_size": d.get("batch_size") or 0,
            "failure_threshold": d.get("failure_threshold"),
            "comment": d.get("comment") or "",
        }


class WindowForm(forms.Form):
    """A weekly maintenance window: the fields of `window_create`."""

    name = forms.SlugField(max_length=64)
    weekdays = forms.TypedMultipleChoiceField(
        coerce=int,
        choices=[(i, d) for i, d in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))],
        widget=forms.CheckboxSelectMultiple,
    )
    start = forms.TimeField(help_text="time of day, e.g. 22:00")
    duration_minutes = forms.IntegerField(min_value=1, max_value=7 * 24 * 60, initial=120)
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="e.g. Europe/Berlin, or machine")

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "name": d["name"],
            "weekdays": d["weekdays"],
            "start": d["start"],
            "duration_minutes": d["duration_minutes"],
            "tz": d["timezone"].strip(),
        }
