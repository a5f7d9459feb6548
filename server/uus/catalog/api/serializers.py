from rest_framework import serializers

from ..models import AffectedPackage, ArchivePackage, Cve, Notice, NoticeCve, Upstream, UpstreamIndex


class AffectedPackageSerializer(serializers.ModelSerializer):
    class Meta:
        model = AffectedPackage
        fields = [
            "ecosystem",
            "release",
            "is_lts",
            "is_pro",
            "pro_variant",
            "source",
            "codename",
            "distro",
            "purl",
            "introduced",
            "fixed",
            "versions",
            "binaries",
            "availability",
            "cves",
        ]


class NoticeCveSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="cve_id")

    class Meta:
        model = NoticeCve
        fields = ["id", "priority", "cvss"]


class NoticeListSerializer(serializers.ModelSerializer):
    cves = serializers.SlugRelatedField(many=True, read_only=True, slug_field="id")

    class Meta:
        model = Notice
        fields = ["id", "kind", "summary", "published", "modified", "priority", "cves"]


class NoticeSerializer(serializers.ModelSerializer):
    cves = NoticeCveSerializer(source="noticecve_set", many=True, read_only=True)
    affected = AffectedPackageSerializer(many=True, read_only=True)
    upstream = serializers.JSONField(source="upstream_ids")

    class Meta:
        model = Notice
        fields = [
            "id",
            "kind",
            "schema_version",
            "summary",
            "details",
            "published",
            "modified",
            "priority",
            "cves",
            "aliases",
            "related",
            "upstream",
            "references",
            "affected",
        ]


class CveFixSerializer(serializers.ModelSerializer):
    notice = serializers.CharField(source="notice_id")

    class Meta:
        model = AffectedPackage
        fields = ["notice", "release", "ecosystem", "is_pro", "source", "fixed", "binaries"]


class CveSerializer(serializers.ModelSerializer):
    notices = serializers.SerializerMethodField()

    class Meta:
        model = Cve
        fields = ["id", "priority", "cvss", "notices"]

    def get_notices(self, obj) -> list[str]:
        return sorted({n for n in obj.notices.values_list("id", flat=True)})


class UpstreamIndexSerializer(serializers.ModelSerializer):
    class Meta:
        model = UpstreamIndex
        fields = [
            "suite",
            "codename",
            "pocket",
            "component",
            "architecture",
            "sha256",
            "variant",
            "package_count",
            "release_date",
            "last_synced",
        ]


class UpstreamSerializer(serializers.ModelSerializer):
    indexes = UpstreamIndexSerializer(many=True, read_only=True)

    class Meta:
        model = Upstream
        fields = [
            "id",
            "name",
            "url",
            "suites",
            "components",
            "architectures",
            "is_enabled",
            "last_sync_started",
            "last_success",
            "last_error",
            "last_error_at",
            "indexes",
        ]
        read_only_fields = ["id", "last_sync_started", "last_success", "last_error", "last_error_at", "indexes"]


class UpstreamCreateSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    url = serializers.CharField(max_length=500)
    suites = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1)
    components = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1)
    architectures = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1)
    keyring = serializers.CharField(help_text="ASCII-armored or binary OpenPGP public keys (base64 for binary)")


class ArchivePackageSerializer(serializers.ModelSerializer):
    upstream = serializers.CharField(source="index.upstream.name")
    suite = serializers.CharField(source="index.suite")
    codename = serializers.CharField(source="index.codename")
    pocket = serializers.CharField(source="index.pocket")
    component = serializers.CharField(source="index.component")

    class Meta:
        model = ArchivePackage
        fields = [
            "name",
            "version",
            "architecture",
            "source",
            "source_version",
            "section",
            "priority",
            "size",
            "sha256",
            "filename",
            "upstream",
            "suite",
            "codename",
            "pocket",
            "component",
        ]


class NoticeImportSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="URL or server-side path of OSV JSON (directory, tarball or file)")
