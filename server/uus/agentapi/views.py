"""/api/agent/v1/: register, check-in, inventory (protocol/v1/README.md).

Plain Django views, not DRF: agents authenticate with their own scheme, send no cookies (so no CSRF),
and the check-in must stay cheap. Order of checks: method, size (413), credentials (401) before the
body is read, then JSON, envelope and fields (400/426), clock (400), and inside one transaction the
replay check (409) and the step itself. Every error uses the API's one envelope.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from uus.api.errors import error_body
from uus.core.exceptions import UusError
from uus.inventory.exceptions import MachineUnauthorized
from uus.inventory.services import machine_authenticate

from . import services
from .exceptions import InvalidRequest, RequestTooLarge, RetryLater
from .v1 import serializers

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024


def _body(request):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidRequest("bad Content-Length header") from None
    if length > MAX_BODY_BYTES:
        raise RequestTooLarge(
            f"request body larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB", details={"limit_bytes": MAX_BODY_BYTES}
        )
    try:
        raw = request.body
    except RequestDataTooBig:
        raise RequestTooLarge("request body too large", details={"limit_bytes": MAX_BODY_BYTES}) from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", details={"body": "not JSON"}) from None


def _credentials(request) -> tuple[str, str]:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    client_id, sep, secret = value.strip().partition(":")
    if scheme.lower() != "machine" or not sep or not client_id or not secret:
        raise MachineUnauthorized("this endpoint needs 'Authorization: Machine <client_id>:<secret>'")
    return client_id, secret


def _is_conflict(exc: DatabaseError) -> bool:
    """Races another request may win: a unique or foreign key clash, a deadlock, SQLite's busy lock."""
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc).lower()
    return "database is locked" in text or "deadlock" in text or "could not serialize" in text


def _answer(request, step, *, authenticated: bool, parse, status: int = 200) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse(error_body("method_not_allowed", "use POST"), status=405, headers={"Allow": "POST"})
    machine = None
    try:
        if authenticated:
            client_id, secret = _credentials(request)
            machine = machine_authenticate(client_id=client_id, secret=secret)
        req = parse(_body(request))
        data = step(machine, req) if authenticated else step(req)
    except UusError as exc:
        if exc.status >= 401:
            log.info("agent %s %s: %s %s", request.path, getattr(machine, "pk", "-"), exc.status, exc.code)
        return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status)
    except DatabaseError as exc:
        if not _is_conflict(exc):
            raise
        # A concurrent request won a race (or SQLite stayed locked): nothing was stored; the agent retries.
        log.warning("agent %s: database conflict, asking the agent to retry: %s", request.path, exc)
        exc = RetryLater("the server is busy with a conflicting change; retry shortly")
        return JsonResponse(error_body(exc.code, exc.message), status=exc.status, headers={"Retry-After": "30"})
    return JsonResponse(data, status=status)


@csrf_exempt
def register(request):
    return _answer(
        request, services.agent_register, authenticated=False, parse=serializers.register_request, status=201
    )


@csrf_exempt
def check_in(request):
    return _answer(request, services.agent_check_in, authenticated=True, parse=serializers.check_in_request)


@csrf_exempt
def inventory(request):
    return _answer(request, services.agent_inventory, authenticated=True, parse=serializers.inventory_request)
