from django.db import models


class ApprovalState(models.TextChoices):
    APPROVED = "approved", "approved"
    DECLINED = "declined", "declined"
    HELD = "held", "held"  # not decided yet (the default of every update); never visible to the ring


class GroupKind(models.TextChoices):
    MANUAL = "manual", "manual: listed machines"
    RULE = "rule", "rule: release and/or hostname pattern"
    OU = "ou", "directory OU (and the OUs below it)"


class RuleKind(models.TextChoices):
    AUTO_APPROVE_SECURITY = "auto_approve_security", "approve security updates of a priority or above"
    AUTO_PROMOTE = "auto_promote", "promote from another ring after N days without failed jobs"
