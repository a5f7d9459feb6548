from django.db import models

PRIORITIES = ("negligible", "low", "medium", "high", "critical")
PRIORITY_RANK = {p: i + 1 for i, p in enumerate(PRIORITIES)}  # 0 = unknown


class Pocket(models.TextChoices):
    RELEASE = "release"
    UPDATES = "updates"
    SECURITY = "security"
    BACKPORTS = "backports"
    PROPOSED = "proposed"


class NoticeKind(models.TextChoices):
    USN = "usn", "Ubuntu Security Notice"
    LSN = "lsn", "Livepatch Security Notice"
    CVE = "cve", "Ubuntu CVE record"


def priority_rank(priority: str | None) -> int:
    return PRIORITY_RANK.get(priority or "", 0)
