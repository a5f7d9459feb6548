from django.db import models


class PackageStatus(models.IntegerChoices):
    """dpkg's db:Status-Status of an inventory entry (`not-installed` entries are never reported)."""

    INSTALLED = 0, "installed"
    CONFIG_FILES = 1, "config-files"
    HALF_INSTALLED = 2, "half-installed"
    UNPACKED = 3, "unpacked"
    HALF_CONFIGURED = 4, "half-configured"
    TRIGGERS_AWAITED = 5, "triggers-awaited"
    TRIGGERS_PENDING = 6, "triggers-pending"


STATUS_CODES: dict[str, int] = {label: value for value, label in PackageStatus.choices}
STATUS_NAMES: dict[int, str] = {value: label for value, label in PackageStatus.choices}

# Statuses in which the package's files are not on the machine (only its configuration is).
ABSENT_STATUSES = frozenset({PackageStatus.CONFIG_FILES})


class ChangeKind(models.TextChoices):
    INSTALLED = "installed", "installed"
    UPGRADED = "upgraded", "upgraded"
    DOWNGRADED = "downgraded", "downgraded"
    REMOVED = "removed", "removed"
    CHANGED = "changed", "changed"  # same version, another dpkg status (e.g. unpacked -> installed)
