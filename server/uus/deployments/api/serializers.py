from rest_framework import serializers

from ..choices import DeploymentAction
from ..models import Deployment, MachineJob, MaintenanceWindow


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    class Meta:
        model = MaintenanceWindow
        fields = ["name", "timezone", "weekdays", "start", "duration_minutes", "created", "updated"]
        read_only_fields = ["created", "updated"]


class MachineJobSerializer(serializers.ModelSerializer):
    machine = serializers.CharField(source="machine.hostname", read_only=True)
    machine_uuid = serializers.UUIDField(source="machine.uuid", read_only=True)

    class Meta:
        model = MachineJob
        fields = [
            "id",
            "deployment",
            "machine",
            "machine_uuid",
            "type",
            "params",
            "state",
            "deadline",
            "queued_at",
            "delivered_at",
            "delivery_count",
            "result_received",
            "result_status",
            "error",
            "exit_code",
            "started_at",
            "finished_at",
            "package_changes",
            "is_reboot_required",
        ]


class MachineJobDetailSerializer(MachineJobSerializer):
    class Meta(MachineJobSerializer.Meta):
        fields = [*MachineJobSerializer.Meta.fields, "output"]


class DeploymentSerializer(serializers.ModelSerializer):
    ring = serializers.SlugRelatedField(slug_field="name", read_only=True)
    window = serializers.SlugRelatedField(slug_field="name", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "target",
            "action",
            "packages",
            "ring",
            "state",
            "start_at",
            "deadline",
            "window",
            "batch_size",
            "failure_threshold",
            "job_timeout_minutes",
            "rollback_of",
            "comment",
            "halted_reason",
            "created_by_name",
            "created",
            "updated",
            "finished",
            "counts",
        ]

    def get_counts(self, deployment) -> dict:
        from ..selectors import deployment_counts

        return deployment_counts(deployment)


class DeploymentDetailSerializer(DeploymentSerializer):
    jobs = serializers.SerializerMethodField()

    class Meta(DeploymentSerializer.Meta):
        fields = [*DeploymentSerializer.Meta.fields, "jobs"]

    def get_jobs(self, deployment) -> list[dict]:
        from ..selectors import deployment_jobs

        return MachineJobSerializer(deployment_jobs(deployment), many=True).data


class DeploymentCreateSerializer(serializers.Serializer):
    target = serializers.CharField(help_text="ring:NAME, group:NAME, ou:DN or machine:HOSTNAME[,HOSTNAME...]")
    action = serializers.ChoiceField(
        choices=[c for c in DeploymentAction.choices if c[0] != DeploymentAction.ROLLBACK],
        default=DeploymentAction.INSTALL_APPROVED,
    )
    packages = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    at = serializers.CharField(required=False, allow_null=True, default=None, help_text="ISO 8601; default now")
    deadline = serializers.CharField(required=False, allow_null=True, default=None)
    window = serializers.CharField(required=False, allow_null=True, default=None, help_text="maintenance window name")
    batch_size = serializers.IntegerField(required=False, default=0, min_value=0)
    failure_threshold = serializers.IntegerField(required=False, allow_null=True, default=None)
    job_timeout_minutes = serializers.IntegerField(required=False, default=24 * 60, min_value=1)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
