"""LDAP directories as UUS sees them: sources, their OU tree, computer objects, groups, where each
machine sits, and which directory groups give which UUS role.

DNs are stored twice: ``dn`` as the directory spells it (normalised by ``ldapclient.normalize_dn``)
for display, and ``dn_key`` (``ldapclient.dn_key``: case-, spacing- and escape-insensitive) for
lookups, so that ``--ou OU=emea,OU=Hosts,DC=corp,DC=test`` finds ``ou=EMEA,ou=Hosts,dc=corp,dc=test``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from uus.accounts.choices import Role
from uus.core.models import TimeStampedModel

from . import ldapclient

DN_LENGTH = 1024


def _default_hostname_attributes() -> list[str]:
    return list(ldapclient.DEFAULT_HOSTNAME_ATTRIBUTES)


def _default_login_attributes() -> list[str]:
    return list(ldapclient.DEFAULT_LOGIN_ATTRIBUTES)


def _default_member_attributes() -> list[str]:
    return list(ldapclient.DEFAULT_MEMBER_ATTRIBUTES)


class DirectorySource(TimeStampedModel):
    """One LDAP directory (OpenLDAP, Active Directory...) that UUS reads OUs, machines and people from.

    The bind password is never stored in the database: ``bind_password_file`` names a file of mode
    0600 under ``DATA_DIR/secrets/`` (like the Django secret key and the signing keys), and neither
    the API, the UI, the CLI nor a log ever shows its content.
    """

    name = models.SlugField(max_length=64, unique=True)
    url = models.CharField(max_length=500, help_text="ldap://host[:port] or ldaps://host[:port]")
    has_start_tls = models.BooleanField(default=False, help_text="upgrade ldap:// with StartTLS")
    ca_certificate = models.TextField(blank=True, default="", help_text="PEM; empty = the system's trust store")
    bind_dn = models.CharField(max_length=DN_LENGTH, blank=True, default="")
    bind_password_file = models.CharField(max_length=500, blank=True, default="")
    base_dn = models.CharField(max_length=DN_LENGTH)
    ou_filter = models.CharField(max_length=1000, default=ldapclient.DEFAULT_OU_FILTER)
    computer_filter = models.CharField(max_length=1000, default=ldapclient.DEFAULT_COMPUTER_FILTER)
    user_filter = models.CharField(max_length=1000, default=ldapclient.DEFAULT_USER_FILTER)
    group_filter = models.CharField(max_length=1000, default=ldapclient.DEFAULT_GROUP_FILTER)
    hostname_attributes = models.JSONField(default=_default_hostname_attributes)
    login_attributes = models.JSONField(default=_default_login_attributes)
    member_attributes = models.JSONField(default=_default_member_attributes)
    page_size = models.PositiveIntegerField(default=500)
    timeout_seconds = models.FloatField(default=10.0)
    is_enabled = models.BooleanField(default=True, help_text="synced on schedule")
    is_login_enabled = models.BooleanField(default=True, help_text="people of mapped groups may log in")
    is_plaintext_login_allowed = models.BooleanField(
        default=False, help_text="allow logins over ldap:// without StartTLS (passwords in clear: tests only)"
    )
    sync_interval_minutes = models.PositiveIntegerField(default=60)
    last_sync_started = models.DateTimeField(null=True, blank=True)
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_counts = models.JSONField(default=dict, blank=True)
    last_warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_bind_password(self) -> bool:
        return bool(self.bind_password_file)

    @property
    def is_tls(self) -> bool:
        return self.has_start_tls or self.url.strip().lower().startswith("ldaps:")


class OrganizationalUnit(TimeStampedModel):
    """An OU read from a source. ``computer_count`` counts computer objects at or below it (as read
    at the last sync); machines placed in it are counted through ``placements``."""

    source = models.ForeignKey(DirectorySource, on_delete=models.CASCADE, related_name="ous")
    dn = models.CharField(max_length=DN_LENGTH)
    dn_key = models.CharField(max_length=DN_LENGTH, db_index=True)
    name = models.CharField(max_length=255)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    depth = models.PositiveSmallIntegerField(default=0)
    sort_key = models.CharField(max_length=DN_LENGTH, default="", help_text="RDN values from the top, for trees")
    computer_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["source", "sort_key"]
        constraints = [models.UniqueConstraint(fields=["source", "dn_key"], name="directory_ou_unique_dn")]

    def __str__(self) -> str:
        return self.dn


class DirectoryComputer(TimeStampedModel):
    """A computer object of a source and the UUS machine it was matched to (by host name or FQDN)."""

    source = models.ForeignKey(DirectorySource, on_delete=models.CASCADE, related_name="computers")
    dn = models.CharField(max_length=DN_LENGTH)
    dn_key = models.CharField(max_length=DN_LENGTH)
    hostname = models.CharField(max_length=253, db_index=True, help_text="lower-case short name")
    fqdn = models.CharField(max_length=253, blank=True, default="")
    ou = models.ForeignKey(
        OrganizationalUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="computers"
    )
    machine = models.ForeignKey(
        "inventory.Machine", null=True, blank=True, on_delete=models.SET_NULL, related_name="directory_computers"
    )

    class Meta:
        ordering = ["source", "hostname"]
        constraints = [models.UniqueConstraint(fields=["source", "dn_key"], name="directory_computer_unique_dn")]

    def __str__(self) -> str:
        return self.dn


class DirectoryGroup(TimeStampedModel):
    """A group of a source, kept so that role mappings can be picked from what the directory has."""

    source = models.ForeignKey(DirectorySource, on_delete=models.CASCADE, related_name="groups")
    dn = models.CharField(max_length=DN_LENGTH)
    dn_key = models.CharField(max_length=DN_LENGTH)
    name = models.CharField(max_length=255)
    member_count = models.PositiveIntegerField(default=0, help_text="direct members")

    class Meta:
        ordering = ["source", "name"]
        constraints = [models.UniqueConstraint(fields=["source", "dn_key"], name="directory_group_unique_dn")]

    def __str__(self) -> str:
        return self.dn


class MachinePlacement(models.Model):
    """A machine is in an OU: one row for *every* OU above its computer object, so that "machines in
    OU X, sub-OUs included" is a single indexed lookup. No created/updated columns: a sync of a large
    directory writes these in bulk and they are derived data, rebuilt from the directory."""

    ou = models.ForeignKey(OrganizationalUnit, on_delete=models.CASCADE, related_name="placements")
    machine = models.ForeignKey("inventory.Machine", on_delete=models.CASCADE, related_name="directory_placements")
    computer = models.ForeignKey(DirectoryComputer, on_delete=models.CASCADE, related_name="placements")
    is_direct = models.BooleanField(default=False, help_text="the OU holds the computer object itself")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ou", "machine"], name="directory_placement_unique")]

    def __str__(self) -> str:
        return f"{self.machine_id} in {self.ou_id}"


class RoleMapping(TimeStampedModel):
    """Members of a directory group (nested groups included) get a UUS role; the highest wins.

    With ``scope_ou_dn``, the role applies only to machines in that OU (and below): an operator
    scoped to ``ou=Germany,...`` may act on German machines only (reads stay fleet-wide)."""

    source = models.ForeignKey(DirectorySource, on_delete=models.CASCADE, related_name="role_mappings")
    group_dn = models.CharField(max_length=DN_LENGTH)
    group_dn_key = models.CharField(max_length=DN_LENGTH)
    role = models.CharField(max_length=16, choices=Role.choices)
    scope_ou_dn = models.CharField(max_length=DN_LENGTH, blank=True, default="")

    class Meta:
        ordering = ["source", "group_dn_key"]
        constraints = [models.UniqueConstraint(fields=["source", "group_dn_key"], name="directory_role_mapping_unique")]

    def __str__(self) -> str:
        scope = f" in {self.scope_ou_dn}" if self.scope_ou_dn else ""
        return f"{self.group_dn} -> {self.role}{scope}"


class DirectoryAccount(TimeStampedModel):
    """Links a local User to the directory entry it logs in as; holds what the last check decided.

    ``scope_ou_dns`` empty means unscoped. ``is_suspended`` is set when a sync finds the person gone
    from the directory or out of every mapped group: the user is then made inactive (which also stops
    their API tokens) until a successful directory login reactivates them. An administrator who
    deactivates the user by hand is not overridden (``is_suspended`` stays False)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_account")
    source = models.ForeignKey(DirectorySource, on_delete=models.CASCADE, related_name="accounts")
    dn = models.CharField(max_length=DN_LENGTH)
    groups = models.JSONField(default=list, blank=True)
    scope_ou_dns = models.JSONField(default=list, blank=True)
    is_suspended = models.BooleanField(default=False)
    last_checked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source", "dn"]

    def __str__(self) -> str:
        return f"{self.user_id} = {self.dn}"
