from rest_framework import serializers


class FindingSerializer(serializers.Serializer):
    """One finding: a machine, a notice, a CVE and the installed binary package it concerns."""

    hostname = serializers.CharField()
    machine_id = serializers.IntegerField()
    release = serializers.CharField()
    notice = serializers.CharField()
    cve = serializers.CharField(allow_null=True)
    package = serializers.CharField(help_text="binary package")
    architecture = serializers.CharField()
    installed_version = serializers.CharField()
    source = serializers.CharField()
    installed_source_version = serializers.CharField()
    fixed_version = serializers.CharField(allow_null=True, help_text="fixed source version; null: no fix yet")
    fixed_binary_version = serializers.CharField(allow_null=True)
    priority = serializers.CharField(allow_null=True)
    status = serializers.CharField(
        help_text="no_fix, fix_available, approved, deploying, deployed, fixed_reboot_pending, not_running"
    )
    pro_only = serializers.BooleanField()
    ecosystem = serializers.CharField()
    pocket = serializers.CharField(allow_null=True, help_text="where the fix is published, e.g. jammy-security")
    approved_version = serializers.CharField(required=False, help_text="the approved version that fixes it")


class ExposureResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    summary = serializers.DictField(
        help_text="machines (exposed), findings, by_priority, by_status, pro_only, and fixed for a CVE or notice"
    )
    findings = FindingSerializer(many=True, help_text="the findings of one page of machines, by hostname")
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)
