from django import forms

from . import selectors
from .choices import ApprovalState, GroupKind, RuleKind


class BulkDecisionForm(forms.Form):
    """Checked rows of the updates page: each value is "package version"."""

    ring = forms.CharField()
    state = forms.ChoiceField(choices=ApprovalState.choices)
    items = forms.MultipleChoiceField(choices=(), required=True)
    comment = forms.CharField(required=False)
    pin = forms.BooleanField(required=False)  # "Hold and pin": keep the ring at these versions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(v, v) for v in self.data.getlist("items")] if self.data else []

    def clean(self):
        data = super().clean()
        if data.get("pin") and data.get("state") != ApprovalState.HELD:
            raise forms.ValidationError("only a held version can be pinned")
        return data

    def pairs(self) -> list[tuple[str, str]]:
        out = []
        for item in self.cleaned_data["items"]:
            name, _, version = item.partition(" ")
            out.append((name, version))
        return out


class ApprovalRuleForm(forms.Form):
    """A new approval rule: the fields of `approval_rule_create`; rings by name."""

    ring = forms.ChoiceField(help_text="the ring the rule decides for")
    kind = forms.ChoiceField(choices=RuleKind.choices)
    min_priority = forms.ChoiceField(required=False, help_text="security rules: this priority or above")
    from_ring = forms.ChoiceField(required=False, help_text="promotion rules: the ring to promote from")
    after_days = forms.IntegerField(required=False, min_value=0, initial=0, help_text="promotion rules: days to wait")

    def __init__(self, *args, **kwargs):
        from uus.catalog.choices import PRIORITIES

        super().__init__(*args, **kwargs)
        rings = [(r.name, r.name) for r in selectors.ring_list()]
        self.fields["ring"].choices = rings
        self.fields["from_ring"].choices = [("", "–"), *rings]
        self.fields["min_priority"].choices = [("", "–"), *((p, p) for p in PRIORITIES)]

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "ring": selectors.ring_get(d["ring"]),
            "kind": d["kind"],
            "min_priority": d["min_priority"],
            "from_ring": selectors.ring_get(d["from_ring"]) if d["from_ring"] else None,
            "after_days": d["after_days"] or 0,
        }


class MachineGroupForm(forms.Form):
    """A new machine group: listed machines (manual), a rule (release and/or hostname pattern), or a
    directory OU (and the OUs below it)."""

    name = forms.SlugField(max_length=64)
    description = forms.CharField(required=False, max_length=200)
    kind = forms.ChoiceField(choices=GroupKind.choices, initial=GroupKind.MANUAL)
    machines = forms.CharField(required=False, help_text="manual: hostnames separated by spaces")
    release = forms.CharField(required=False, max_length=64, help_text='rule: e.g. "12" or "22.04"')
    hostname_pattern = forms.CharField(required=False, max_length=200, help_text="rule: a glob, e.g. web-*")
    ou = forms.ChoiceField(required=False, label="Directory OU", help_text="OU groups")

    def __init__(self, *args, **kwargs):
        from uus.directory.selectors import ou_target_choices

        super().__init__(*args, **kwargs)
        self.fields["ou"].choices = [("", "–"), *ou_target_choices()]

    def service_kwargs(self) -> dict:
        """Raises NotFound for an unknown hostname (the view shows it; nothing is created)."""
        from uus.inventory.selectors import machine_get

        d = self.cleaned_data
        return {
            "name": d["name"],
            "kind": d["kind"],
            "description": d["description"],
            "release": d["release"].strip(),
            "hostname_pattern": d["hostname_pattern"].strip(),
            "ou_dn": d["ou"].removeprefix("ou:"),
            "machines": [machine_get(ident=h) for h in d["machines"].split()],
        }


class RingForm(forms.Form):
    """A new ring (admins): its place in promotion order decides what it is promoted from and to."""

    name = forms.SlugField(max_length=64)
    position = forms.IntegerField(min_value=0, help_text="promotion order: test is 10, production 100")
    description = forms.CharField(required=False, max_length=200)
