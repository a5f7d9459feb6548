from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role

from .. import selectors, services
from ..filters import PARAMS, MachineFilterSet
from ..models import EnrollmentToken, Machine
from .serializers import (
    EnrollmentTokenCreateSerializer,
    EnrollmentTokenSerializer,
    InstalledPackageSerializer,
    InventoryChangeSerializer,
    MachineDetailSerializer,
    MachineSerializer,
)


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
            comment=v["comment"],
            group=v["group"],
            expires=services.parse_expiry(v.get("expires")),
            max_uses=v.get("max_uses"),
            user=request.user,
        )
        return Response({**EnrollmentTokenSerializer(token).data, "token": key}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EnrollmentTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.enrollment_token_revoke(token=self.get_object())
        return Response(EnrollmentTokenSerializer(token).data)


MACHINE_FILTERS = [OpenApiParameter(p.name, bool if p.kind == "bool" else str, description=p.help) for p in PARAMS]


class MachineViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Registered machines with their facts; filters are those of `uus machines list` and the UI."""

    queryset = Machine.objects.none()
    lookup_field = "uuid"
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"
    write_role = Role.ADMIN

    def get_queryset(self):
        if self.action == "list":
            return MachineFilterSet(self.request.query_params).filter(selectors.machine_list())
        return Machine.objects.select_related("package_set")

    def get_serializer_class(self):
        return MachineSerializer if self.action == "list" else MachineDetailSerializer

    @extend_schema(parameters=MACHINE_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="name or source contains")],
        responses=InstalledPackageSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def packages(self, request, uuid=None):
        """The machine's installed packages, sorted by name (paginated)."""
        qs = selectors.machine_packages(machine=self.get_object(), search=request.query_params.get("q", ""))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(InstalledPackageSerializer(page, many=True).data)

    @extend_schema(responses=InventoryChangeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, uuid=None):
        """The machine's inventory changes, newest first, each with its package changes (paginated)."""
        page = self.paginate_queryset(selectors.machine_history(machine=self.get_object()))
        return self.get_paginated_response(InventoryChangeSerializer(page, many=True).data)

    @extend_schema(request=None, responses=MachineDetailSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, uuid=None):
        """Void the machine's credentials: its agent gets 401 machine_revoked (administrators)."""
        machine = services.machine_revoke(machine=self.get_object(), user=request.user)
        return Response(MachineDetailSerializer(machine).data)
