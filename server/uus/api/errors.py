"""One error envelope for every API error: {"error": {"code", "message", "details"}}."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from uus.core.exceptions import UusError


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _message(detail) -> str:
    if isinstance(detail, list):
        return "; ".join(_message(d) for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_message(v)}" for k, v in detail.items())
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, UusError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ParseError):
        code, message, details = "malformed_request", f"the request body could not be parsed: {exc.detail}", {}
    elif isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", _message(exc.detail), exc.detail
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        message, details = _message(exc.detail), {}
    else:
        code, message, details = "error", str(exc), {}
    response.data = error_body(str(code), message, details if isinstance(details, (dict, list)) else {})
    return response


def not_found_view(request, exception=None):
    from django.http import JsonResponse

    return JsonResponse(error_body("not_found", "no such API endpoint"), status=status.HTTP_404_NOT_FOUND)
