from django import forms

from uus.accounts.choices import Role

from . import ldapclient

_DN = {"placeholder": "dc=corp,dc=example", "size": 60}


def _csv(value) -> list[str]:
    return [v.strip() for v in str(value or "").replace("\n", ",").split(",") if v.strip()]


class DirectorySourceForm(forms.Form):
    """Add or change a directory. The password field is never filled in: blank keeps the stored one."""

    name = forms.SlugField(max_length=64, help_text="a short name: corp, ad-emea")
    url = forms.CharField(max_length=500, help_text="ldaps://dc1.corp.example or ldap://ldap.corp.example:389")
    start_tls = forms.BooleanField(required=False, label="StartTLS", help_text="upgrade an ldap:// connection to TLS")
    ca_certificate = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----"}),
        help_text="PEM of the CA that signed the directory's certificate; empty = the system's trust store",
    )
    base_dn = forms.CharField(max_length=1024, label="Base DN", widget=forms.TextInput(attrs=_DN))
    bind_dn = forms.CharField(
        max_length=1024,
        required=False,
        label="Bind DN",
        widget=forms.TextInput(attrs={"placeholder": "cn=uus-reader,ou=Service Accounts,dc=corp,dc=example"}),
    )
    bind_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="stored in a file only the server can read; leave blank to keep the current one",
    )
    ou_filter = forms.CharField(max_length=1000, initial=ldapclient.DEFAULT_OU_FILTER, label="OU filter")
    computer_filter = forms.CharField(max_length=1000, initial=ldapclient.DEFAULT_COMPUTER_FILTER)
    user_filter = forms.CharField(max_length=1000, initial=ldapclient.DEFAULT_USER_FILTER)
    group_filter = forms.CharField(max_length=1000, initial=ldapclient.DEFAULT_GROUP_FILTER)
    hostname_attributes = forms.CharField(
        initial=", ".join(ldapclient.DEFAULT_HOSTNAME_ATTRIBUTES), help_text="first one with a host name wins"
    )
    login_attributes = forms.CharField(initial=", ".join(ldapclient.DEFAULT_LOGIN_ATTRIBUTES))
    member_attributes = forms.CharField(initial=", ".join(ldapclient.DEFAULT_MEMBER_ATTRIBUTES))
    page_size = forms.IntegerField(initial=500, min_value=1, max_value=10000)
    timeout_seconds = forms.FloatField(initial=10.0, min_value=1, max_value=300)
    sync_interval_minutes = forms.IntegerField(initial=60, min_value=5)
    is_enabled = forms.BooleanField(required=False, initial=True, label="Sync on schedule")
    is_login_enabled = forms.BooleanField(required=False, initial=True, label="People of mapped groups may log in")
    is_plaintext_login_allowed = forms.BooleanField(
        required=False, label="Allow logins without TLS (passwords in clear; never in production)"
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["name"].disabled = True

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        for key in ("hostname_attributes", "login_attributes", "member_attributes"):
            data[key] = _csv(data[key])
        return data

    @classmethod
    def initial_from(cls, source) -> dict:
        return {
            "name": source.name,
            "url": source.url,
            "start_tls": source.has_start_tls,
            "ca_certificate": source.ca_certificate,
            "base_dn": source.base_dn,
            "bind_dn": source.bind_dn,
            "ou_filter": source.ou_filter,
            "computer_filter": source.computer_filter,
            "user_filter": source.user_filter,
            "group_filter": source.group_filter,
            "hostname_attributes": ", ".join(source.hostname_attributes),
            "login_attributes": ", ".join(source.login_attributes),
            "member_attributes": ", ".join(source.member_attributes),
            "page_size": source.page_size,
            "timeout_seconds": source.timeout_seconds,
            "sync_interval_minutes": source.sync_interval_minutes,
            "is_enabled": source.is_enabled,
            "is_login_enabled": source.is_login_enabled,
            "is_plaintext_login_allowed": source.is_plaintext_login_allowed,
        }


class RoleMappingForm(forms.Form):
    group_dn = forms.CharField(
        max_length=1024,
        label="Group DN",
        widget=forms.TextInput(attrs={"placeholder": "cn=uus-admins,ou=Groups,dc=corp,dc=example", "list": "groups"}),
    )
    role = forms.ChoiceField(choices=Role.choices)
    scope_ou_dn = forms.CharField(
        max_length=1024,
        required=False,
        label="Only in OU",
        widget=forms.TextInput(attrs={"placeholder": "empty: every machine", "list": "ous"}),
    )
