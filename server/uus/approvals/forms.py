from django import forms

from .choices import ApprovalState


class BulkDecisionForm(forms.Form):
    """Checked rows of the updates page: each value is "package version"."""

    ring = forms.CharField()
    state = forms.ChoiceField(choices=ApprovalState.choices)
    items = forms.MultipleChoiceField(choices=(), required=True)
    comment = forms.CharField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(v, v) for v in self.data.getlist("items")] if self.data else []

    def pairs(self) -> list[tuple[str, str]]:
        out = []
        for item in self.cleaned_data["items"]:
            name, _, version = item.partition(" ")
            out.append((name, version))
        return out
