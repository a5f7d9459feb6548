from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role

from .. import services
from ..models import EnrollmentToken
from .serializers import EnrollmentTokenCreateSerializer, EnrollmentTokenSerializer


class EnrollmentTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tokens that let machines register. The key is returned once, as `token`."""

    queryset = EnrollmentToken.objects.all()
    serializer_class = EnrollmentTokenSerializer
    write_role = Role.ADMIN

    @extend_schema(request=EnrollmentTokenCreateSerializer, responses={201: EnrollmentTokenSerializer})
    def create(self, request):
        data = EnrollmentTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        token, key = services.enrollment_token_create(
            comment=v["comment"], group=v["group"], expires=services.parse_expiry(v.get("expires")),
            max_uses=v.get("max_uses"), user=request.user,
        )
        return Response({**EnrollmentTokenSerializer(token).data, "token": key}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EnrollmentTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.enrollment_token_revoke(token=self.get_object())
        return Response(EnrollmentTokenSerializer(token).data)
