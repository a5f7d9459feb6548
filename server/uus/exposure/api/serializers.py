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
    status = serializers.CharField()
    pro_only = serializers.BooleanField()
    ecosystem = serializers.CharField()


class ExposureResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    summary = serializers.DictField()
    findings = FindingSerializer(many=True)
