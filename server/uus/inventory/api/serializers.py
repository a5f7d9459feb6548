from rest_framework import serializers

from ..models import EnrollmentToken


class EnrollmentTokenSerializer(serializers.ModelSerializer):
    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = EnrollmentToken
        fields = ["id", "prefix", "comment", "group", "expires", "max_uses", "uses", "is_revoked", "is_usable",
                  "created", "created_by_name"]
        read_only_fields = fields


class EnrollmentTokenCreateSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    group = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    expires = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                    help_text="7d, 12h, 30m or an ISO 8601 time")
    max_uses = serializers.IntegerField(required=False, min_value=1, allow_null=True)
