from rest_framework import serializers

from ..choices import STATUS_NAMES
from ..constants import STALE_AFTER
from ..models import EnrollmentToken, Machine, PackageChange, PackageChunkMember


class EnrollmentTokenSerializer(serializers.ModelSerializer):
    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = EnrollmentToken
        fields = [
            "id",
            "prefix",
            "comment",
            "group",
            "expires",
            "max_uses",
            "uses",
            "is_revoked",
            "is_usable",
            "created",
            "created_by_name",
        ]
        read_only_fields = fields


class EnrollmentTokenCreateSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    group = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    expires = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, help_text="7d, 12h, 30m or an ISO 8601 time"
    )
    max_uses = serializers.IntegerField(required=False, min_value=1, allow_null=True)


class MachineSerializer(serializers.ModelSerializer):
    """A machine as lists show it. `id` is the machine's uuid (the agent protocol's `machine`)."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    package_count = serializers.IntegerField(read_only=True)
    is_stale = serializers.SerializerMethodField()
    group = serializers.CharField(source="enrollment_group", read_only=True)

    class Meta:
        model = Machine
        fields = [
            "id",
            "hostname",
            "fqdn",
            "os_id",
            "os_version_id",
            "os_codename",
            "os_pretty_name",
            "release",
            "kernel",
            "architecture",
            "is_reboot_required",
            "last_seen",
            "is_stale",
            "registered",
            "inventory_hash",
            "inventory_updated",
            "package_count",
            "group",
            "agent_version",
            "is_revoked",
            "is_clone_suspected",
        ]
        read_only_fields = fields

    def get_is_stale(self, machine) -> bool:
        from django.utils import timezone

        return machine.last_seen is None or machine.last_seen < timezone.now() - STALE_AFTER


class MachineDetailSerializer(MachineSerializer):
    class Meta(MachineSerializer.Meta):
        fields = [
            *MachineSerializer.Meta.fields,
            "machine_id",
            "time_zone",
            "reboot_required_packages",
            "apt_sources",
            "clone_suspected_at",
            "created",
            "updated",
        ]
        read_only_fields = fields


class InstalledPackageSerializer(serializers.ModelSerializer):
    """One installed package of a machine, with the fields the agent reported."""

    name = serializers.CharField(source="package.name")
    architecture = serializers.CharField(source="package.architecture")
    version = serializers.CharField(source="package.version")
    source = serializers.CharField(source="package.source")
    source_version = serializers.CharField(source="package.source_version")
    status = serializers.SerializerMethodField()

    class Meta:
        model = PackageChunkMember
        fields = ["name", "architecture", "version", "source", "source_version", "status"]
        read_only_fields = fields

    def get_status(self, member) -> str:
        return STATUS_NAMES[member.status]


class PackageChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = PackageChange
        fields = ["time", "kind", "name", "architecture", "old_version", "new_version"]
        read_only_fields = fields
