from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from uus.accounts.choices import Role
from uus.inventory.selectors import machine_get

from .. import selectors, services
from ..models import Approval, ApprovalRule, MachineGroup, Ring
from .serializers import (
    ApprovalBulkSerializer,
    ApprovalRuleSerializer,
    ApprovalSerializer,
    ApprovalSetSerializer,
    MachineGroupSerializer,
    RingMembersSerializer,
    RingPromoteSerializer,
    RingSerializer,
    UpdateSerializer,
)


class RingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Rings in promotion order. Admins add rings; operators move machines and promote approvals."""

    queryset = Ring.objects.all()
    serializer_class = RingSerializer
    lookup_field = "name"
    write_role = Role.ADMIN

    def get_permissions(self):
        self.write_role = Role.OPERATOR if self.action in ("members", "promote") else Role.ADMIN
        return super().get_permissions()

    def perform_create(self, serializer):
        v = serializer.validated_data
        serializer.instance = services.ring_create(
            name=v["name"], position=v.get("position", 0), description=v.get("description", ""), user=self.request.user
        )

    @extend_schema(request=RingMembersSerializer, responses=RingSerializer)
    @action(detail=True, methods=["post"])
    def members(self, request, name=None):
        """Put machines in this ring (their apt sources follow at the next check-in)."""
        ring = self.get_object()
        data = RingMembersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            for ident in data.validated_data["machines"]:
                services.machine_set_ring(
                    machine=machine_get(ident=ident), ring=ring, user=request.user, reason=data.validated_data["reason"]
                )
        return Response(RingSerializer(ring).data)

    @extend_schema(request=RingPromoteSerializer, responses=ApprovalSerializer(many=True))
    @action(detail=True, methods=["post"])
    def promote(self, request, name=None):
        """Approve for the next ring (or `to`) what this ring has approved."""
        ring = self.get_object()
        data = RingPromoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        to_ring = selectors.ring_get(v["to"]) if v.get("to") else selectors.ring_next(ring)
        if to_ring is None:
            from ..exceptions import ApprovalInvalid

            raise ApprovalInvalid(f"ring '{ring.name}' is the last ring: name the ring to promote to")
        out = services.ring_promote(
            ring=ring, to_ring=to_ring, user=request.user, names=v["packages"], comment=v["comment"]
        )
        return Response(ApprovalSerializer(out, many=True).data)


class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Decisions per ring: approved, declined or held. POST sets one; bulk/ sets many at once."""

    queryset = Approval.objects.none()
    serializer_class = ApprovalSerializer
    write_role = Role.OPERATOR

    def get_queryset(self):
        q = self.request.query_params
        ring = selectors.ring_get(q["ring"]) if q.get("ring") else None
        return selectors.approval_list(ring=ring, state=q.get("state", ""), name=q.get("package", ""))

    @extend_schema(
        parameters=[OpenApiParameter(p, str) for p in ("ring", "state", "package")],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ApprovalSetSerializer, responses={201: ApprovalSerializer})
    def create(self, request):
        data = ApprovalSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        approval = services.approval_set(
            ring=selectors.ring_get(v["ring"]),
            name=v["package"],
            version=v["version"],
            state=v["state"],
            comment=v["comment"],
            is_pinned=v["is_pinned"],
            user=request.user,
        )
        return Response(ApprovalSerializer(approval).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ApprovalBulkSerializer, responses=ApprovalSerializer(many=True))
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        data = ApprovalBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        out = services.approvals_set_bulk(
            ring=selectors.ring_get(v["ring"]),
            items=[(i["package"], i["version"]) for i in v["items"]],
            state=v["state"],
            comment=v["comment"],
            is_pinned=v["is_pinned"],
            user=request.user,
        )
        return Response(ApprovalSerializer(out, many=True).data)


class UpdateViewSet(viewsets.GenericViewSet):
    """Newer upstream versions of packages installed in a ring, by priority and machines affected."""

    serializer_class = UpdateSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("ring", str, description="default: production"),
            OpenApiParameter("state", str, description="pending, approved, declined or held"),
            OpenApiParameter("package", str),
            OpenApiParameter("kind", str, description="security or regular"),
            OpenApiParameter("min_priority", str, description="security updates of this priority or above"),
        ],
        responses=UpdateSerializer(many=True),
    )
    def list(self, request):
        q = request.query_params
        ring = selectors.ring_get(q.get("ring") or selectors.DEFAULT_RING)
        rows = selectors.updates_pending(ring=ring, state=q.get("state", ""), name=q.get("package", ""))
        rows = selectors.updates_filter(rows, kind=q.get("kind", ""), min_priority=q.get("min_priority", ""))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(UpdateSerializer(page, many=True).data)


class MachineGroupViewSet(viewsets.ModelViewSet):
    """Machine groups: manual (listed machines), rule (release, hostname pattern) or a directory OU."""

    queryset = MachineGroup.objects.all()
    serializer_class = MachineGroupSerializer
    lookup_field = "name"
    write_role = Role.OPERATOR

    def _members(self, serializer):
        return [machine_get(ident=i) for i in serializer.validated_data.pop("members", [])]

    def perform_create(self, serializer):
        members = self._members(serializer)
        serializer.instance = services.group_create(
            user=self.request.user, machines=members, **serializer.validated_data
        )

    def perform_update(self, serializer):
        members = self._members(serializer)
        v = dict(serializer.validated_data)
        v.pop("name", None)
        v.pop("kind", None)
        with transaction.atomic():
            group = services.group_update(group=serializer.instance, user=self.request.user, **v)
            if "members" in self.request.data:
                current = set(selectors.group_machines(group))
                services.group_members_set(
                    group=group,
                    add=[m for m in members if m not in current],
                    remove=[m for m in current if m not in members],
                    user=self.request.user,
                )
        serializer.instance = group

    def perform_destroy(self, instance):
        services.group_delete(group=instance, user=self.request.user)


class ApprovalRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Automatic decisions per ring (applied every 10 minutes): approve security updates of a priority
    or above, or promote from another ring after N days without failed jobs there."""

    queryset = ApprovalRule.objects.none()
    serializer_class = ApprovalRuleSerializer
    write_role = Role.OPERATOR

    def get_queryset(self):
        ring = self.request.query_params.get("ring")
        qs = selectors.rule_list()
        return qs.filter(ring=selectors.ring_get(ring)) if ring else qs

    @extend_schema(parameters=[OpenApiParameter("ring", str)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        v = serializer.validated_data
        from_ring = (v.get("from_ring") or {}).get("name")
        serializer.instance = services.approval_rule_create(
            ring=selectors.ring_get(v["ring"]["name"]),
            kind=v["kind"],
            min_priority=v["min_priority"],
            from_ring=selectors.ring_get(from_ring) if from_ring else None,
            after_days=v["after_days"],
            user=self.request.user,
        )

    def perform_destroy(self, instance):
        services.approval_rule_delete(rule=instance, user=self.request.user)
