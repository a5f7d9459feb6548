from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role

from .. import selectors, services
from ..models import Deployment, MachineJob, MaintenanceWindow
from .serializers import (
    DeploymentCreateSerializer,
    DeploymentDetailSerializer,
    DeploymentSerializer,
    MachineJobDetailSerializer,
    MachineJobSerializer,
    MaintenanceWindowSerializer,
    ReasonSerializer,
)


def deployment_create_from(data: dict, user) -> Deployment:
    """The API's and the CLI's create: validated input -> services.deployment_create."""
    window = selectors.window_get(data["window"]) if data.get("window") else None
    return services.deployment_create(
        target=data["target"],
        action=data["action"],
        packages=data["packages"],
        at=data["at"],
        deadline=data["deadline"],
        window=window,
        batch_size=data["batch_size"],
        failure_threshold=data["failure_threshold"],
        job_timeout_minutes=data["job_timeout_minutes"],
        comment=data["comment"],
        user=user,
    )


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deployments with per-machine progress; operators create, cancel, retry and roll back."""

    queryset = Deployment.objects.none()
    write_role = Role.OPERATOR

    def get_queryset(self):
        return selectors.deployment_list(state=self.request.query_params.get("state", ""))

    def get_serializer_class(self):
        return DeploymentSerializer if self.action == "list" else DeploymentDetailSerializer

    @extend_schema(parameters=[OpenApiParameter("state", str)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=DeploymentCreateSerializer, responses={201: DeploymentDetailSerializer})
    def create(self, request):
        data = DeploymentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = deployment_create_from(data.validated_data, request.user)
        return Response(DeploymentDetailSerializer(deployment).data, status=status.HTTP_201_CREATED)

    def _act(self, request, fn):
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        out = fn(deployment=self.get_object(), user=request.user, reason=data.validated_data["reason"])
        return Response(DeploymentDetailSerializer(out).data)

    @extend_schema(request=ReasonSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(request, services.deployment_cancel)

    @extend_schema(request=ReasonSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._act(request, services.deployment_retry)

    @extend_schema(request=ReasonSerializer, responses=DeploymentDetailSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """A new deployment returning the machines to the versions they had before this one."""
        return self._act(request, services.deployment_rollback)


class MachineJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs on machines (filter by machine uuid or deployment id), with their results and apt output."""

    queryset = MachineJob.objects.none()

    def get_queryset(self):
        qs = MachineJob.objects.select_related("machine").order_by("-created")
        q = self.request.query_params
        if q.get("machine"):
            qs = (
                qs.filter(machine__uuid=q["machine"])
                if len(q["machine"]) >= 32
                else qs.filter(machine__hostname=q["machine"])
            )
        if q.get("deployment"):
            qs = qs.filter(deployment_id=q["deployment"])
        return qs

    def get_serializer_class(self):
        return MachineJobSerializer if self.action == "list" else MachineJobDetailSerializer

    @extend_schema(parameters=[OpenApiParameter("machine", str), OpenApiParameter("deployment", int)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class MaintenanceWindowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = MaintenanceWindow.objects.all()
    serializer_class = MaintenanceWindowSerializer
    lookup_field = "name"
    write_role = Role.OPERATOR

    @extend_schema(request=MaintenanceWindowSerializer, responses={201: MaintenanceWindowSerializer})
    def create(self, request):
        data = MaintenanceWindowSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        window = services.window_create(
            name=v["name"],
            weekdays=v["weekdays"],
            start=v["start"],
            duration_minutes=v["duration_minutes"],
            tz=v.get("timezone", "UTC"),
            user=request.user,
        )
        return Response(MaintenanceWindowSerializer(window).data, status=status.HTTP_201_CREATED)
