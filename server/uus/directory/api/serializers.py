"""Directory API shapes. No serializer ever outputs the bind password: it is write-only on input,
and the output says only whether one is stored (``has_bind_password``)."""

from rest_framework import serializers

from uus.accounts.choices import Role

from ..models import DirectorySource, OrganizationalUnit, RoleMapping


class RoleMappingSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", queryset=DirectorySource.objects.all())

    class Meta:
        model = RoleMapping
        fields = ["id", "source", "group_dn", "role", "scope_ou_dn", "created", "updated"]
        read_only_fields = ["id", "created", "updated"]
        validators = []  # uniqueness is by DN key, which the service enforces (and updates in place)


class DirectorySourceSerializer(serializers.ModelSerializer):
    start_tls = serializers.BooleanField(source="has_start_tls")
    has_bind_password = serializers.BooleanField(read_only=True)
    role_mappings = RoleMappingSerializer(many=True, read_only=True)

    class Meta:
        model = DirectorySource
        fields = [
            "name",
            "url",
            "start_tls",
            "ca_certificate",
            "base_dn",
            "bind_dn",
            "has_bind_password",
            "ou_filter",
            "computer_filter",
            "user_filter",
            "group_filter",
            "hostname_attributes",
            "login_attributes",
            "member_attributes",
            "page_size",
            "timeout_seconds",
            "is_enabled",
            "is_login_enabled",
            "is_plaintext_login_allowed",
            "sync_interval_minutes",
            "last_sync_started",
            "last_success",
            "last_error",
            "last_error_at",
            "last_counts",
            "last_warnings",
            "role_mappings",
            "created",
            "updated",
        ]
        read_only_fields = fields


class _AttributeList(serializers.ListField):
    child = serializers.CharField(max_length=100)


class DirectorySourceWriteSerializer(serializers.Serializer):
    """Input of create (name, url and base_dn required) and update (every field optional)."""

    name = serializers.CharField(max_length=64)
    url = serializers.CharField(max_length=500, help_text="ldap://host[:port] or ldaps://host[:port]")
    base_dn = serializers.CharField(max_length=1024)
    bind_dn = serializers.CharField(max_length=1024, required=False, allow_blank=True)
    bind_password = serializers.CharField(
        required=False, allow_blank=True, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )
    start_tls = serializers.BooleanField(required=False)
    ca_certificate = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    ou_filter = serializers.CharField(required=False, max_length=1000)
    computer_filter = serializers.CharField(required=False, max_length=1000)
    user_filter = serializers.CharField(required=False, max_length=1000)
    group_filter = serializers.CharField(required=False, max_length=1000)
    hostname_attributes = _AttributeList(required=False)
    login_attributes = _AttributeList(required=False)
    member_attributes = _AttributeList(required=False)
    page_size = serializers.IntegerField(required=False)
    timeout_seconds = serializers.FloatField(required=False)
    is_enabled = serializers.BooleanField(required=False)
    is_login_enabled = serializers.BooleanField(required=False)
    is_plaintext_login_allowed = serializers.BooleanField(required=False)
    sync_interval_minutes = serializers.IntegerField(required=False)


class DirectorySyncSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False, help_text="compute and return the changes without writing")
    allow_empty = serializers.BooleanField(
        default=False, help_text="accept a directory that returns no OUs and no computers any more"
    )


class DirectoryUnmatchedSerializer(serializers.Serializer):
    machines = serializers.ListField(child=serializers.CharField(), help_text="UUS machines with no computer object")
    computers = serializers.ListField(child=serializers.CharField(), help_text="computer objects with no machine")


class RoleMappingWriteSerializer(serializers.Serializer):
    source = serializers.SlugRelatedField(slug_field="name", queryset=DirectorySource.objects.all())
    group_dn = serializers.CharField(max_length=1024)
    role = serializers.ChoiceField(choices=Role.choices)
    scope_ou_dn = serializers.CharField(max_length=1024, required=False, allow_blank=True, default="")


class OrganizationalUnitSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name", read_only=True)
    machine_count = serializers.IntegerField(read_only=True, help_text="machines in this OU or below it")
    computer_count = serializers.IntegerField(
        read_only=True, help_text="computer objects in this OU or below it, at the last sync"
    )

    class Meta:
        model = OrganizationalUnit
        fields = ["id", "source", "dn", "name", "parent", "depth", "computer_count", "machine_count"]
        read_only_fields = fields
