from rest_framework import serializers

from ..choices import ApprovalState, GroupKind, RuleKind
from ..models import Approval, ApprovalRule, MachineGroup, Ring


class RingSerializer(serializers.ModelSerializer):
    machines = serializers.SerializerMethodField()
    approved = serializers.SerializerMethodField()

    class Meta:
        model = Ring
        fields = ["name", "position", "description", "machines", "approved", "created", "updated"]
        read_only_fields = ["machines", "approved", "created", "updated"]

    def get_machines(self, ring) -> int:
        from ..selectors import ring_machines

        return ring_machines(ring).count()

    def get_approved(self, ring) -> int:
        return ring.approvals.filter(state=ApprovalState.APPROVED).count()


class RingMembersSerializer(serializers.Serializer):
    machines = serializers.ListField(child=serializers.CharField(), min_length=1, help_text="hostnames or uuids")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RingPromoteSerializer(serializers.Serializer):
    to = serializers.CharField(required=False, help_text="the ring to promote to; default: the next ring")
    packages = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ApprovalSerializer(serializers.ModelSerializer):
    ring = serializers.SlugRelatedField(slug_field="name", read_only=True)
    package = serializers.CharField(source="name", read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "ring",
            "package",
            "version",
            "state",
            "is_pinned",
            "comment",
            "decided_by_name",
            "created",
            "updated",
        ]


class ApprovalSetSerializer(serializers.Serializer):
    ring = serializers.CharField()
    package = serializers.CharField()
    version = serializers.CharField()
    state = serializers.ChoiceField(choices=ApprovalState.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    is_pinned = serializers.BooleanField(required=False, default=False)


class ApprovalItemSerializer(serializers.Serializer):
    package = serializers.CharField()
    version = serializers.CharField()


class ApprovalBulkSerializer(serializers.Serializer):
    ring = serializers.CharField()
    state = serializers.ChoiceField(choices=ApprovalState.choices)
    items = ApprovalItemSerializer(many=True)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    is_pinned = serializers.BooleanField(required=False, default=False, help_text="with held: keep the ring at these")


class UpdateSerializer(serializers.Serializer):
    package = serializers.CharField(source="name")
    version = serializers.CharField()
    source = serializers.CharField()
    source_version = serializers.CharField()
    machines = serializers.IntegerField(help_text="machines of the ring with an older version")
    is_security = serializers.BooleanField(help_text="a notice names it, or it is in a security pocket")
    pocket = serializers.CharField(help_text="release, updates, security, ... of the archive offering it")
    priority = serializers.CharField()
    notices = serializers.ListField(child=serializers.CharField())
    state = serializers.CharField(help_text="pending, approved, declined or held in this ring")


class MachineGroupSerializer(serializers.ModelSerializer):
    machines = serializers.SerializerMethodField()
    members = serializers.ListField(
        child=serializers.CharField(), write_only=True, required=False, help_text="manual groups: hostnames or uuids"
    )
    kind = serializers.ChoiceField(choices=GroupKind.choices, default=GroupKind.MANUAL)

    class Meta:
        model = MachineGroup
        fields = [
            "name",
            "description",
            "kind",
            "release",
            "hostname_pattern",
            "ou_dn",
            "machines",
            "members",
            "created",
            "updated",
        ]
        read_only_fields = ["machines", "created", "updated"]

    def get_machines(self, group) -> list[str]:
        from ..selectors import group_machines

        return list(group_machines(group).order_by("hostname").values_list("hostname", flat=True))


class ApprovalRuleSerializer(serializers.ModelSerializer):
    """Reads with ring names; writes take `ring` (and `from_ring` for auto_promote) by name."""

    ring = serializers.CharField(source="ring.name")
    from_ring = serializers.CharField(source="from_ring.name", required=False, allow_null=True, default=None)
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    min_priority = serializers.CharField(required=False, allow_blank=True, default="")
    after_days = serializers.IntegerField(required=False, min_value=0, default=0)
    description = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRule
        fields = [
            "id",
            "ring",
            "kind",
            "min_priority",
            "from_ring",
            "after_days",
            "is_enabled",
            "description",
            "created_by_name",
            "created",
        ]
        read_only_fields = ["id", "is_enabled", "description", "created_by_name", "created"]

    def get_description(self, rule) -> str:
        return str(rule)
