from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import services
from ..choices import Role
from ..models import ApiToken, User
from .serializers import ApiTokenCreateSerializer, ApiTokenSerializer, UserCreateSerializer, UserSerializer


class UserViewSet(viewsets.ModelViewSet):
    """People and their roles. Only administrators manage them; everyone may read `me`."""

    queryset = User.objects.order_by("username")
    serializer_class = UserSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    action_roles = {"me": Role.AUDITOR}
    http_method_names = ["get", "post", "patch", "delete"]

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request):
        data = UserCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=UserSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        return Response(UserSerializer(request.user).data)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your own API tokens. The key is shown once, at creation."""

    queryset = ApiToken.objects.none()  # for the schema; get_queryset() scopes to the caller
    serializer_class = ApiTokenSerializer
    read_role = Role.AUDITOR
    write_role = Role.AUDITOR  # every role may hold tokens for its own account

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user).order_by("-created")

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenSerializer})
    def create(self, request):
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, **data.validated_data)
        return Response({**ApiTokenSerializer(token).data, "key": key}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = self.get_object()
        services.api_token_revoke(token=token)
        return Response(ApiTokenSerializer(token).data)
