from rest_framework import serializers

from ..models import Job, Schedule


class JobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "name",
            "title",
            "kwargs",
            "state",
            "locks",
            "progress_done",
            "progress_total",
            "percent",
            "result",
            "error",
            "created",
            "started",
            "finished",
            "created_by_name",
            "worker",
            "attempts",
            "is_cancel_requested",
        ]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log"]
        read_only_fields = fields


class JobCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="dotted name of a registered job")
    kwargs = serializers.DictField(required=False, default=dict)


class ScheduleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Schedule
        fields = ["id", "name", "job_name", "kwargs", "interval_seconds", "next_run", "is_enabled", "last_job"]
        read_only_fields = ["id", "name", "job_name", "last_job"]
