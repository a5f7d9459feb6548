from uus.core.exceptions import UusError


class EnrollmentRefused(UusError):
    code = "enrollment_refused"
    status = 403


class MachineUnauthorized(UusError):
    """Unknown client id or wrong secret."""

    code = "unauthorized"
    status = 401


class MachineRevoked(MachineUnauthorized):
    code = "machine_revoked"


class CloneSuspected(UusError):
    """An exchange token older than the last two: two agents share one machine's credentials."""

    code = "clone_suspected"
    status = 409


class InvalidInventory(UusError):
    code = "invalid_request"
    status = 400


class HashMismatch(UusError):
    """The packages sent do not hash to the inventory_hash sent with them."""

    code = "hash_mismatch"
    status = 400


class BaseMismatch(UusError):
    """A delta relative to an inventory the server does not have for this machine."""

    code = "base_mismatch"
    status = 409


class MachineNotFound(UusError):
    code = "not_found"
    status = 404


class InvalidFilter(UusError):
    code = "invalid"
    status = 400
