from uus.core.exceptions import UusError


class LoginThrottled(UusError):
    code = "login_throttled"
    status = 429


class InvalidToken(UusError):
    code = "invalid_token"
    status = 401
