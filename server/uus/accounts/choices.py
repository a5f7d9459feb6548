from django.db import models


class Role(models.TextChoices):
    """What a person may do. Each role includes the ones below it: admin > operator > auditor."""

    ADMIN = "admin", "Administrator"
    OPERATOR = "operator", "Operator"
    AUDITOR = "auditor", "Auditor"


ROLE_RANK = {Role.AUDITOR: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
