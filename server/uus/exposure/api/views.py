"""Exposure endpoints: the same selector answers the CLI (`uus cve`), the UI and these."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from uus.inventory.selectors import machine_get

from .. import selectors
from .serializers import ExposureResultSerializer


def _answer(q: selectors.Query, request) -> Response:
    rows = selectors.findings(q, include_not_running=request.query_params.get("all") in ("1", "true"))
    return Response({"query": q.label, "summary": selectors.summary(rows), "findings": rows})


class ExposureSearchView(APIView):
    """Every finding for `q`: a CVE id, a notice id, or package:NAME[<VERSION]."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True), OpenApiParameter("all", bool)],
        responses=ExposureResultSerializer,
    )
    def get(self, request):
        return _answer(selectors.parse_query(request.query_params.get("q", "")), request)


class CveMachinesView(APIView):
    """Machines exposed to a CVE, with each finding."""

    @extend_schema(responses=ExposureResultSerializer)
    def get(self, request, cve_id: str):
        return _answer(selectors.parse_query(cve_id), request)


class NoticeMachinesView(APIView):
    """Machines exposed to a notice (USN or Ubuntu CVE record), with each finding."""

    @extend_schema(responses=ExposureResultSerializer)
    def get(self, request, notice_id: str):
        return _answer(selectors.parse_query(notice_id), request)


class MachineExposureView(APIView):
    """A machine's findings, by priority."""

    @extend_schema(responses=ExposureResultSerializer)
    def get(self, request, ident: str):
        machine = machine_get(ident=ident)
        q = selectors.Query(machine_id=machine.pk, label=machine.hostname)
        return _answer(q, request)
