from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role
from uus.api.responses import JobAccepted

from .. import services
from ..models import Job, Schedule
from .serializers import (
    JobCreateSerializer,
    JobDetailSerializer,
    JobSerializer,
    ScheduleSerializer,
)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Background jobs with their state, progress and log."""

    queryset = Job.objects.all()
    write_role = Role.ADMIN
    action_roles = {"cancel": Role.OPERATOR}

    def get_queryset(self):
        qs = Job.objects.order_by("-created")
        state = self.request.query_params.get("state")
        if state:
            qs = qs.filter(state=state)
        return qs.defer("log") if self.action == "list" else qs

    def get_serializer_class(self):
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    @extend_schema(request=JobCreateSerializer, responses={202: None})
    def create(self, request):
        """Dispatch a registered job by name (administrators)."""
        data = JobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.dispatch(data.validated_data["name"], kwargs=data.validated_data["kwargs"], user=request.user)
        return JobAccepted(job, request)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = services.job_cancel(job=self.get_object())
        return Response(JobSerializer(job).data)


class ScheduleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """Periodic jobs; administrators change their interval or switch them off."""

    queryset = Schedule.objects.all()
    serializer_class = ScheduleSerializer
    write_role = Role.ADMIN
    http_method_names = ["get", "patch"]
