from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role
from uus.api.responses import JobAccepted
from uus.jobs.services import dispatch

from .. import selectors, services, tasks
from ..models import ArchivePackage, Cve, Notice, Upstream
from .serializers import (
    ArchivePackageSerializer,
    CveFixSerializer,
    CveSerializer,
    NoticeImportSerializer,
    NoticeListSerializer,
    NoticeSerializer,
    UpstreamCreateSerializer,
    UpstreamSerializer,
)

NOTICE_FILTERS = [
    OpenApiParameter("release", str, description="e.g. 22.04, jammy or Ubuntu:Pro:22.04:LTS"),
    OpenApiParameter("priority", str, description="least priority: negligible, low, medium, high, critical"),
    OpenApiParameter("package", str, description="source or binary package name"),
    OpenApiParameter("q", str, description="USN id, CVE id or words of the summary"),
    OpenApiParameter("kind", str, description="usn, lsn or cve"),
    OpenApiParameter("since", str, description="published on or after (ISO date, or date and time)"),
    OpenApiParameter("until", str, description="published on or before (ISO date: that whole day, UTC)"),
]


class NoticeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Security notices (USN and Ubuntu CVE records) as imported from OSV."""

    queryset = Notice.objects.none()
    write_role = Role.ADMIN
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        p = self.request.query_params
        return selectors.notice_list(
            release=p.get("release", ""),
            priority=p.get("priority", ""),
            package=p.get("package", ""),
            q=p.get("q", ""),
            kind=p.get("kind", ""),
            since=p.get("since") or None,
            until=p.get("until") or None,
        ).prefetch_related("cves")

    def get_serializer_class(self):
        return NoticeSerializer if self.action == "retrieve" else NoticeListSerializer

    def get_object(self):
        try:
            return selectors.notice_get(self.kwargs["pk"])
        except Notice.DoesNotExist:
            from rest_framework.exceptions import NotFound

            raise NotFound(f"no notice {self.kwargs['pk']}") from None

    @extend_schema(parameters=NOTICE_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=NoticeImportSerializer, responses={202: None})
    @action(detail=False, methods=["post"], url_path="import")
    def import_(self, request):
        """Queue an import of OSV notices from a URL or server-side path (administrators)."""
        data = NoticeImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = dispatch(tasks.notices_import, kwargs={"source": data.validated_data["source"]}, user=request.user)
        return JobAccepted(job, request)


class CveViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """CVEs with their Ubuntu priority and the notices that fix them."""

    queryset = Cve.objects.order_by("-id")
    serializer_class = CveSerializer
    lookup_value_regex = "[^/]+"

    def get_object(self):
        return get_object_or_404(Cve, pk__iexact=self.kwargs["pk"])

    @extend_schema(responses=CveFixSerializer(many=True))
    @action(detail=True, methods=["get"])
    def fixes(self, request, pk=None):
        return Response(CveFixSerializer(selectors.cve_fixes(self.get_object()), many=True).data)


class UpstreamViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Upstream APT archives and the state of their last sync."""

    queryset = Upstream.objects.prefetch_related("indexes")
    serializer_class = UpstreamSerializer
    write_role = Role.ADMIN
    lookup_field = "name"

    @extend_schema(request=UpstreamCreateSerializer, responses={201: UpstreamSerializer})
    def create(self, request):
        data = UpstreamCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        upstream = services.upstream_add(
            name=v["name"],
            url=v["url"],
            suites=v["suites"],
            components=v["components"],
            architectures=v["architectures"],
            keyring_data=services.keyring_from_text(v["keyring"]),
        )
        return Response(UpstreamSerializer(upstream).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def sync(self, request, name=None):
        upstream = self.get_object()
        job = dispatch(
            tasks.upstream_sync, kwargs={"name": upstream.name}, user=request.user, locks=[f"upstream:{upstream.name}"]
        )
        return JobAccepted(job, request)


class ArchivePackageViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Package versions in the synced upstream archives: ?name= a binary or source package."""

    queryset = ArchivePackage.objects.none()
    serializer_class = ArchivePackageSerializer

    @extend_schema(parameters=[OpenApiParameter("name", str, required=True)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        name = self.request.query_params.get("name", "")
        return selectors.package_versions(name) if name else ArchivePackage.objects.none()
