from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role
from uus.api.responses import JobAccepted
from uus.jobs.services import dispatch

from .. import selectors, services, tasks
from ..models import DirectorySource, OrganizationalUnit, RoleMapping
from .serializers import (
    DirectorySourceSerializer,
    DirectorySourceWriteSerializer,
    DirectorySyncSerializer,
    DirectoryUnmatchedSerializer,
    OrganizationalUnitSerializer,
    RoleMappingSerializer,
    RoleMappingWriteSerializer,
)


class DirectoryViewSet(viewsets.ModelViewSet):
    """LDAP directories (OpenLDAP, Active Directory) that OUs, machine placement and logins come from.
    The bind password is write-only: no answer ever contains it."""

    queryset = DirectorySource.objects.prefetch_related("role_mappings").order_by("name")
    serializer_class = DirectorySourceSerializer
    write_role = Role.ADMIN
    lookup_field = "name"
    http_method_names = ["get", "post", "patch", "delete"]

    @extend_schema(request=DirectorySourceWriteSerializer, responses={201: DirectorySourceSerializer})
    def create(self, request):
        data = DirectorySourceWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = services.directory_source_create(**data.validated_data)
        return Response(DirectorySourceSerializer(source).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DirectorySourceWriteSerializer, responses=DirectorySourceSerializer)
    def partial_update(self, request, name=None):
        data = DirectorySourceWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        source = services.directory_source_update(source=self.get_object(), **data.validated_data)
        return Response(DirectorySourceSerializer(source).data)

    def destroy(self, request, name=None):
        services.directory_source_delete(source=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, name=None):
        """Queue a connection test (connect, TLS, bind, base DN); the job's result says what happened."""
        source = self.get_object()
        job = dispatch(tasks.directory_test, kwargs={"name": source.name}, user=request.user)
        return JobAccepted(job, request)

    @extend_schema(request=DirectorySyncSerializer, responses={202: None})
    @action(detail=True, methods=["post"])
    def sync(self, request, name=None):
        """Queue a sync; with dry_run the job's result lists what would change and nothing is written."""
        source = self.get_object()
        data = DirectorySyncSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = dispatch(
            tasks.directory_sync,
            kwargs={"name": source.name, **data.validated_data},
            user=request.user,
            locks=[tasks.sync_lock(source.name)],
        )
        return JobAccepted(job, request)

    @extend_schema(responses=DirectoryUnmatchedSerializer)
    @action(detail=True, methods=["get"])
    def unmatched(self, request, name=None):
        """Machines of UUS that no directory has a computer object for, and this directory's computer
        objects that match no machine."""
        source = self.get_object()
        machines = selectors.machines_unmatched().order_by("hostname").values_list("hostname", flat=True)
        computers = selectors.computers_unmatched(source=source).order_by("hostname").values_list("dn", flat=True)
        return Response({"machines": list(machines), "computers": list(computers)})


class RoleMappingViewSet(viewsets.ModelViewSet):
    """Which directory group gives which UUS role, optionally limited to an OU. Highest role wins."""

    queryset = RoleMapping.objects.select_related("source").order_by("source__name", "group_dn_key")
    serializer_class = RoleMappingSerializer
    write_role = Role.ADMIN
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self):
        qs = super().get_queryset()
        source = self.request.query_params.get("source")
        return qs.filter(source__name=source) if source else qs

    @extend_schema(
        parameters=[OpenApiParameter("source", str, description="directory name")],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=RoleMappingWriteSerializer, responses={201: RoleMappingSerializer})
    def create(self, request):
        data = RoleMappingWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mapping = services.role_mapping_set(**data.validated_data)
        return Response(RoleMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RoleMappingWriteSerializer, responses=RoleMappingSerializer)
    def partial_update(self, request, pk=None):
        mapping = self.get_object()
        current = {
            "source": mapping.source.name,
            "group_dn": mapping.group_dn,
            "role": mapping.role,
            "scope_ou_dn": mapping.scope_ou_dn,
        }
        data = RoleMappingWriteSerializer(data={**current, **request.data})
        data.is_valid(raise_exception=True)
        mapping = services.role_mapping_update(mapping=mapping, **data.validated_data)
        return Response(RoleMappingSerializer(mapping).data)

    def destroy(self, request, pk=None):
        services.role_mapping_delete(mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class OrganizationalUnitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The OU tree of every directory in depth-first order, with machine counts that include the
    OUs below (``parent`` and ``depth`` rebuild the tree)."""

    queryset = OrganizationalUnit.objects.none()
    serializer_class = OrganizationalUnitSerializer

    def get_queryset(self):
        return selectors.ou_list(source=self.request.query_params.get("source") or None)

    @extend_schema(parameters=[OpenApiParameter("source", str, description="directory name")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
