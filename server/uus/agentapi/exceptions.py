from uus.core.exceptions import UusError


class InvalidRequest(UusError):
    code = "invalid_request"
    status = 400


class UnsupportedProtocol(UusError):
    code = "unsupported_protocol_version"
    status = 426


class ClockSkew(UusError):
    code = "clock_skew"
    status = 400


class Replayed(UusError):
    code = "replayed"
    status = 409


class RequestTooLarge(UusError):
    code = "request_too_large"
    status = 413


class RetryLater(UusError):
    code = "retry_later"
    status = 503
