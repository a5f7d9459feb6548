from uus.core.exceptions import Conflict, NotFound, UusError


class DeploymentInvalid(UusError):
    code = "invalid_deployment"


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class DeploymentConflict(Conflict):
    code = "deployment_conflict"


class WindowInvalid(UusError):
    code = "invalid_maintenance_window"
