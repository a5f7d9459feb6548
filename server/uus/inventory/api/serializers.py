from dataclasses import asdict

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import selectors
from ..choices import STATUS_NAMES, ChangeKind
from ..constants import STALE_AFTER
from ..models import EnrollmentToken, InventoryChange, Machine, PackageChunkMember


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


class PackageChangeSerializer(serializers.Serializer):
    """One package's change within an inventory change (selectors.PackageChange)."""

    kind = serializers.ChoiceField(choices=ChangeKind.choices)
    name = serializers.CharField()
    architecture = serializers.CharField()
    old_version = serializers.CharField(allow_null=True)
    new_version = serializers.CharField(allow_null=True)


class InventoryChangeSerializer(serializers.ModelSerializer):
    """A machine's move from one inventory to the next, with the package changes it made."""

    old_inventory_hash = serializers.CharField(source="old_set.hash", read_only=True)
    new_inventory_hash = serializers.CharField(source="new_set.hash", read_only=True)
    packages = serializers.SerializerMethodField()

    class Meta:
        model = InventoryChange
        fields = ["time", "old_inventory_hash", "new_inventory_hash", "packages"]
        read_only_fields = fields

    @extend_schema_field(PackageChangeSerializer(many=True))
    def get_packages(self, change) -> list[dict]:
        return [asdict(c) for c in selectors.inventory_change_packages(change)]
