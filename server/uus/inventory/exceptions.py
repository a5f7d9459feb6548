from uus.core.exceptions import UusError


class EnrollmentRefused(UusError):
    code = "enrollment_refused"
    status = 403
