"""Rings (ordered stages a machine belongs to, one each) and what each ring may install."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from uus.core.models import TimeStampedModel

from .choices import ApprovalState, GroupKind, RuleKind


class Ring(TimeStampedModel):
    """An ordered deployment stage (`test` before `production`). Each ring has its own APT repository,
    which exposes exactly what is approved for it."""

    name = models.SlugField(max_length=64, unique=True)
    position = models.PositiveIntegerField(default=0, help_text="order of promotion: lower comes first")
    description = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class RingMembership(models.Model):
    """The ring of one machine. A machine without a row is in the default ring (`production`)."""

    machine = models.OneToOneField(
        "inventory.Machine", on_delete=models.CASCADE, primary_key=True, related_name="ring_membership"
    )
    ring = models.ForeignKey(Ring, on_delete=models.PROTECT, related_name="memberships")
    updated = models.DateTimeField(auto_now=True)


class Approval(TimeStampedModel):
    """The decision for one package version in one ring: approved (its repository exposes it),
    declined (never exposed), or held (undecided; not exposed). Updates without a row are pending."""

    ring = models.ForeignKey(Ring, on_delete=models.CASCADE, related_name="approvals")
    name = models.CharField(max_length=200, help_text="binary package name")
    version = models.CharField(max_length=200)
    version_key = models.BinaryField(max_length=512)
    state = models.CharField(max_length=16, choices=ApprovalState.choices)
    is_pinned = models.BooleanField(default=False, help_text="held and kept at this version on purpose")
    comment = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_by_name = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["ring", "name", "version_key"]
        constraints = [models.UniqueConstraint(fields=["ring", "name", "version"], name="uniq_approval")]
        indexes = [models.Index(fields=["ring", "state", "name"], name="approval_ring_state")]

    def __str__(self) -> str:
        return f"{self.ring.name}: {self.name} {self.version} {self.state}"


class MachineGroup(TimeStampedModel):
    """A named set of machines: listed by hand, chosen by rule (release, hostname glob), or a
    directory OU. A machine may be in any number of groups; groups target deployments."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=8, choices=GroupKind.choices, default=GroupKind.MANUAL)
    release = models.CharField(max_length=64, blank=True, default="", help_text='rule: e.g. "12", "22.04"')
    hostname_pattern = models.CharField(max_length=200, blank=True, default="", help_text="rule: glob, e.g. web-*")
    ou_dn = models.CharField(max_length=500, blank=True, default="")
    members = models.ManyToManyField("inventory.Machine", blank=True, related_name="machine_groups")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RetainedVersion(models.Model):
    """A version a ring's repository keeps exposing although it is no longer approved: what machines
    had before a deployment, kept so that the deployment can be rolled back (until `until`)."""

    ring = models.ForeignKey(Ring, on_delete=models.CASCADE, related_name="retained")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=200)
    until = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ring", "name", "version"], name="uniq_retained")]


class ApprovalRule(TimeStampedModel):
    """An automatic decision for `ring`, applied by the periodic job deployments.tasks.approval_rules_apply:
    - auto_approve_security: approve security updates of priority >= `min_priority` for the ring;
    - auto_promote: approve what `from_ring` approved `after_days` ago, if no job failed in `from_ring` since."""

    ring = models.ForeignKey(Ring, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    min_priority = models.CharField(max_length=16, blank=True, default="")
    from_ring = models.ForeignKey(Ring, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    after_days = models.PositiveIntegerField(default=0)
    is_enabled = models.BooleanField(default=True)
    created_by_name = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["ring__position", "id"]

    def __str__(self) -> str:
        if self.kind == RuleKind.AUTO_PROMOTE:
            return f"promote {self.from_ring} -> {self.ring} after {self.after_days} days without failures"
        return f"approve security updates >= {self.min_priority} for {self.ring}"
