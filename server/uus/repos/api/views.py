from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from uus.accounts.choices import Role
from uus.api.errors import error_body
from uus.api.responses import JobAccepted

from .. import services
from ..models import PrivatePackage
from .serializers import (
    CacheStatsSerializer,
    PackageUploadResultSerializer,
    PackageUploadSerializer,
    PrivatePackageSerializer,
    RepositorySerializer,
    SigningKeyRetireSerializer,
    SigningKeySerializer,
)


class PrivatePackageViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Private (uploaded) packages: published in suite uus-local, component main, of every ring."""

    queryset = PrivatePackage.objects.all()
    serializer_class = PrivatePackageSerializer
    write_role = Role.OPERATOR
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": PackageUploadSerializer},
        responses={201: PrivatePackageSerializer, 200: PackageUploadResultSerializer(many=True)},
    )
    def create(self, request):
        """Upload a .deb (field `file`): 201 with the package when stored, 200 when the same file was
        already there. Several `file` fields: each checked alike and the good ones stored in one
        transaction; 200 with one result per file, in order ({file, created, package, error})."""
        files = request.FILES.getlist("file")
        if len(files) > 1:
            with services.upload_spool(files) as paths:
                outcomes = services.packages_upload_many(paths=paths, user=request.user)
            results = [
                {
                    "file": f.name,
                    "created": o.created,
                    "package": PrivatePackageSerializer(o.package).data if o.package else None,
                    "error": error_body(o.exception.code, o.exception.message, o.exception.details)["error"]
                    if o.exception
                    else None,
                }
                for f, o in zip(files, outcomes, strict=True)
            ]
            return Response(PackageUploadResultSerializer(results, many=True).data)
        data = PackageUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data.get("file")
        with services.upload_spool([upload or data.validated_data["content"]]) as (path,):
            row, created = services.package_upload(path=path, user=request.user)
        return Response(
            PrivatePackageSerializer(row).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def perform_destroy(self, instance):
        services.package_remove(package=instance)


class RepositoryViewSet(viewsets.ViewSet):
    """Each ring's APT repository (/repo/<ring>/): suites, counts, last publish, signing key."""

    lookup_field = "ring"
    action_roles = {"publish": Role.OPERATOR}

    @extend_schema(responses=RepositorySerializer(many=True))
    def list(self, request):
        return Response(RepositorySerializer(services.repositories_overview(), many=True).data)

    @extend_schema(responses=RepositorySerializer)
    def retrieve(self, request, ring=None):
        services.ring_get(ring)
        found = [r for r in services.repositories_overview() if r["ring"] == ring]
        return Response(RepositorySerializer(found[0]).data)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def publish(self, request, ring=None):
        """Queue a publish of this ring (coalesced with one already queued)."""
        ring_obj = services.ring_get(ring)
        jobs = services.repos_publish_soon(ring_obj, user=request.user)
        if not jobs:
            from uus.jobs.choices import JobState
            from uus.jobs.models import Job

            from .. import tasks

            queued = Job.objects.filter(name=tasks.repo_publish.job_name, state=JobState.QUEUED, kwargs__ring=ring)
            jobs = [queued.order_by("created").first()]
        return JobAccepted(jobs[0], request)


class SigningKeyViewSet(viewsets.ViewSet):
    """The repository signing key: fingerprint, rotation with an overlap, retiring an old key."""

    action_roles = {"rotate": Role.ADMIN, "retire": Role.ADMIN}

    @extend_schema(responses=SigningKeySerializer)
    def list(self, request):
        return Response(SigningKeySerializer(services.signing_key_info()).data)

    @extend_schema(request=None, responses=SigningKeySerializer)
    @action(detail=False, methods=["post"])
    def rotate(self, request):
        return Response(SigningKeySerializer(services.signing_key_rotate()).data)

    @extend_schema(request=SigningKeyRetireSerializer, responses=SigningKeySerializer)
    @action(detail=False, methods=["post"])
    def retire(self, request):
        data = SigningKeyRetireSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(SigningKeySerializer(services.signing_key_retire(data.validated_data["fingerprint"])).data)


class CacheStatsViewSet(viewsets.ViewSet):
    """Pull-through cache statistics: hits, misses, bytes saved, size against the limit."""

    @extend_schema(responses=CacheStatsSerializer)
    def list(self, request):
        return Response(CacheStatsSerializer(services.cache_stats()).data)
