from collections.abc import Callable
from typing import Any

from django import forms

from uus.core.exceptions import UusError


def form_submit(form: forms.Form, action: Callable[[], Any]) -> Any:
    """Run `action` (a service call reading form.cleaned_data) when the bound form is valid. A service
    error lands on the form, above its fields, and None comes back; so does an invalid form."""
    if not form.is_valid():
        return None
    try:
        return action()
    except UusError as exc:
        form.add_error(None, exc.message)
        return None


class LoginForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"})
    )
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class EnrollmentTokenForm(forms.Form):
    comment = forms.CharField(max_length=200, required=False)
    group = forms.CharField(max_length=200, required=False)
    expires = forms.CharField(required=False, help_text="7d, 12h or an ISO time; empty: never")
    max_uses = forms.IntegerField(required=False, min_value=1)


class UserCreateForm(forms.Form):
    username = forms.RegexField(r"^[\w.@+-]{1,150}$", max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=[("auditor", "Auditor"), ("operator", "Operator"), ("admin", "Administrator")])
    password = forms.CharField(widget=forms.PasswordInput, min_length=10)
