"""Rings (ordered stages a machine belongs to, one each) and what each ring may install."""

from __future__ import annotations

from django.db import models

from uus.core.models import TimeStampedModel


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
