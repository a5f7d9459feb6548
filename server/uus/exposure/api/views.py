"""Exposure endpoints: the same selectors answer the CLI (`uus cve`), the UI and these."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from uus.core.exceptions import UusError
from uus.inventory.selectors import machine_get

from .. import selectors
from .serializers import ExposureResultSerializer

MAX_LIMIT = 5000
PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description=f"machines per page (default 1000, at most {MAX_LIMIT})"),
    OpenApiParameter("offset", int, description="machines to skip, by hostname"),
    OpenApiParameter("all", bool, description="also list installed kernels that are not running"),
    OpenApiParameter("fixed", bool, description="also count machines already fixed (summary.fixed; CVE or notice)"),
]


def _int(request, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UusError(f"{name} must be a whole number, not '{raw}'", code="invalid_parameter") from None
    if not 0 <= value <= top:
        raise UusError(f"{name} must be between 0 and {top}", code="invalid_parameter")
    return value


def _answer(q: selectors.Query, request) -> Response:
    """Counts over every affected machine, and the findings of one page of machines (by hostname)."""
    limit = _int(request, "limit", 1000, MAX_LIMIT)
    offset = _int(request, "offset", 0, 10**9)
    every = request.query_params.get("all") in ("1", "true")
    fixed = request.query_params.get("fixed") in ("1", "true")
    return Response(selectors.search(q, limit=limit, offset=offset, include_not_running=every, count_fixed=fixed))


class ExposureSearchView(APIView):
    """Every finding for `q`: a CVE id, a notice id, or package:NAME[<VERSION]."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True), *PAGE_PARAMETERS],
        responses=ExposureResultSerializer,
    )
    def get(self, request):
        return _answer(selectors.parse_query(request.query_params.get("q", "")), request)


class CveMachinesView(APIView):
    """Machines exposed to a CVE, with each finding."""

    @extend_schema(parameters=PAGE_PARAMETERS, responses=ExposureResultSerializer)
    def get(self, request, cve_id: str):
        q = selectors.parse_query(cve_id)
        if not q.cve:
            raise UusError(f"'{cve_id}' is not a CVE id (CVE-YYYY-NNNN)", code="invalid_query")
        return _answer(q, request)


class NoticeMachinesView(APIView):
    """Machines exposed to a notice (USN or Ubuntu CVE record), with each finding."""

    @extend_schema(parameters=PAGE_PARAMETERS, responses=ExposureResultSerializer)
    def get(self, request, notice_id: str):
        q = selectors.parse_query(notice_id)
        if not q.notice:
            raise UusError(f"'{notice_id}' is not a notice id (USN-…, UBUNTU-CVE-…)", code="invalid_query")
        return _answer(q, request)


class MachineExposureView(APIView):
    """A machine's findings, most severe first."""

    @extend_schema(parameters=PAGE_PARAMETERS[2:3], responses=ExposureResultSerializer)
    def get(self, request, ident: str):
        machine = machine_get(ident=ident)
        q = selectors.Query(machine_id=machine.pk, label=machine.hostname)
        rows = selectors.findings(q, include_not_running=request.query_params.get("all") in ("1", "true"))
        return Response({"query": q.label, "summary": selectors.summary(rows), "findings": rows})
