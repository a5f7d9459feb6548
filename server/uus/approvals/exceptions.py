from uus.core.exceptions import NotFound, UusError


class RingNotFound(NotFound):
    code = "ring_not_found"


class GroupNotFound(NotFound):
    code = "group_not_found"


class RuleNotFound(NotFound):
    code = "rule_not_found"


class ApprovalInvalid(UusError):
    code = "invalid_approval"


class GroupInvalid(UusError):
    code = "invalid_group"
