from rest_framework import serializers

from ..choices import Role
from ..models import ApiToken, User


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "source", "is_active", "last_login", "date_joined"]
        read_only_fields = ["id", "source", "last_login", "date_joined"]


class UserCreateSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{1,150}$")
    password = serializers.CharField(write_only=True, min_length=1)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.AUDITOR)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created", "expires", "last_used", "is_revoked"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    days = serializers.IntegerField(required=False, min_value=1, max_value=3650, allow_null=True)
