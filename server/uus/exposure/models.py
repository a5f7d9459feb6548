"""Which installed packages fall in which notice's vulnerable range, kept per package set.

Package sets are immutable and shared by every machine with the same inventory, so findings are
stored once per set rather than once per machine: a homogeneous fleet of 100,000 machines costs the
findings of its few distinct sets. A machine's findings are its set's findings on the machine's own
release (`machine.release == affected.release`), joined at query time.
"""

from __future__ import annotations

from django.db import models


class Finding(models.Model):
    """Package `package` (installed, dpkg status installed) of set `package_set` has a source version in
    [introduced, fixed) of affected entry `affected`."""

    id = models.BigAutoField(primary_key=True)
    package_set = models.ForeignKey("inventory.PackageSet", on_delete=models.CASCADE, related_name="+", db_index=False)
    affected = models.ForeignKey("catalog.AffectedPackage", on_delete=models.CASCADE, related_name="+")
    package = models.ForeignKey("inventory.Package", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["package_set", "affected", "package"], name="uniq_finding"),
        ]


class EvaluatedSet(models.Model):
    """A (package set, release) pair that machines use, whose findings are complete (evaluated against
    every stored notice). Findings are only written for the releases of a set's pairs: a set holds no
    release of its own, and the entries of other releases would only be filtered out at every query."""

    id = models.BigAutoField(primary_key=True)
    package_set = models.ForeignKey("inventory.PackageSet", on_delete=models.CASCADE, related_name="+")
    release = models.CharField(max_length=64)
    evaluated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["package_set", "release"], name="uniq_evaluated_set_release")]


class MachineCount(models.Model):
    """How many machines (not revoked, with an inventory) share a (package set, release, running kernel,
    ring): every machine of such a group has the same findings with the same statuses, so result pages
    count groups, never machines. Kept by database triggers on the machine and ring membership tables
    (machine_counts.py), so no write path, the agent's plain UPDATE included, can forget it."""

    id = models.BigAutoField(primary_key=True)
    package_set_id = models.IntegerField()  # no foreign key: a row exists only while machines use the set
    release = models.CharField(max_length=64)
    kernel = models.CharField(max_length=255)
    ring_id = models.BigIntegerField(help_text="the machine's ring; 0: no membership (the default ring)")
    machines = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["package_set_id", "release", "kernel", "ring_id"], name="uniq_machine_count_group"
            )
        ]


class ExposureSnapshot(models.Model):
    """A daily count for the trend chart: machines exposed at each priority."""

    day = models.DateField()
    priority = models.CharField(max_length=16)
    machines = models.PositiveIntegerField()
    findings = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "priority"], name="uniq_snapshot")]
        ordering = ["day", "priority"]
