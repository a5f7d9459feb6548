from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets

from .. import selectors
from .serializers import AuditEventSerializer

FILTERS = [
    OpenApiParameter("action", str, description='prefix of the action, e.g. "approval."'),
    OpenApiParameter("target", str, description='prefix of the target, e.g. "machine:web-01"'),
    OpenApiParameter("actor", str, description="actor name"),
    OpenApiParameter("since", str, description="ISO 8601 time, inclusive"),
    OpenApiParameter("until", str, description="ISO 8601 time, exclusive"),
]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Append-only audit events, newest first (read-only for every role)."""

    serializer_class = AuditEventSerializer

    def get_queryset(self):
        q = self.request.query_params
        return selectors.audit_event_list(
            action=q.get("action", ""),
            target=q.get("target", ""),
            actor=q.get("actor", ""),
            since=parse_datetime(q["since"]) if q.get("since") else None,
            until=parse_datetime(q["until"]) if q.get("until") else None,
        )

    @extend_schema(parameters=FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
