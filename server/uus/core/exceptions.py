"""The single domain error. Services raise a subclass with a message an administrator can act on;
the API, the UI and the CLI each turn it into their own error form in one place."""


class UusError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, details: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class NotFound(UusError):
    code = "not_found"
    status = 404


class Conflict(UusError):
    code = "conflict"
    status = 409


class PermissionDenied(UusError):
    code = "permission_denied"
    status = 403
