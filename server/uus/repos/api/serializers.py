from rest_framework import serializers

from ..models import PrivatePackage


class PrivatePackageSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrivatePackage
        fields = [
            "id",
            "name",
            "version",
            "architecture",
            "source",
            "source_version",
            "maintainer",
            "description",
            "section",
            "size",
            "sha256",
            "filename",
            "uploaded_by_name",
            "created",
        ]


class PackageUploadSerializer(serializers.Serializer):
    """multipart/form-data with `file`, or JSON with `content_base64` (small packages, scripts)."""

    file = serializers.FileField(required=False, help_text="the .deb, as multipart/form-data")
    content_base64 = serializers.CharField(required=False, help_text="the .deb, base64-encoded, in a JSON body")

    def validate(self, attrs):
        if bool(attrs.get("file")) == bool(attrs.get("content_base64")):
            raise serializers.ValidationError("send exactly one of `file` (multipart) and `content_base64` (JSON)")
        if attrs.get("content_base64"):
            import base64
            import binascii

            try:
                attrs["content"] = base64.b64decode(attrs["content_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise serializers.ValidationError({"content_base64": "not valid base64"}) from None
        return attrs


class UploadErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class PackageUploadResultSerializer(serializers.Serializer):
    """One file of an upload of several: the package stored (or already there), or why it was refused."""

    file = serializers.CharField(help_text="the file name the client sent")
    created = serializers.BooleanField()
    package = PrivatePackageSerializer(allow_null=True)
    error = UploadErrorSerializer(allow_null=True)


class RepositorySuiteSerializer(serializers.Serializer):
    suite = serializers.CharField()
    components = serializers.ListField(child=serializers.CharField())
    architectures = serializers.ListField(child=serializers.CharField())
    packages = serializers.IntegerField()


class RepositorySerializer(serializers.Serializer):
    """One ring's repository (read-only: it is what the last publish wrote)."""

    ring = serializers.CharField()
    url = serializers.CharField(help_text="APT root: dists/ and pool/")
    last_published = serializers.DateTimeField(allow_null=True)
    last_duration = serializers.FloatField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    suites = RepositorySuiteSerializer(many=True)
    package_count = serializers.IntegerField()
    fingerprint = serializers.CharField(allow_blank=True)


class SigningKeySerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    overlap = serializers.ListField(child=serializers.CharField(), help_text="old keys still published and co-signing")
    key_url = serializers.CharField()


class SigningKeyRetireSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()


class CacheStatsSerializer(serializers.Serializer):
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    bytes_fetched = serializers.IntegerField()
    bytes_saved = serializers.IntegerField()
    evicted = serializers.IntegerField()
    files = serializers.IntegerField()
    size = serializers.IntegerField()
    limit = serializers.IntegerField()
