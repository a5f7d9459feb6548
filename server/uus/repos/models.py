"""Private packages, the state of each ring's published repository, and the pull-through cache.

The bytes of every package live once in the content-addressed pool (pool.py) under their SHA-256;
rows here say what they are and where apt finds them.
"""

from __future__ import annotations

from django.db import models

from uus.core.models import TimeStampedModel


class PrivatePackage(TimeStampedModel):
    """An uploaded `.deb`, published in suite `uus-local`, component `main`, of every ring.
    One file per (name, version, architecture): the same file again is the same row."""

    name = models.CharField(max_length=200)
    version = models.CharField(max_length=200)
    architecture = models.CharField(max_length=32)
    source = models.CharField(max_length=200)
    source_version = models.CharField(max_length=200)
    maintainer = models.CharField(max_length=500, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    section = models.CharField(max_length=100, blank=True, default="")
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    md5 = models.CharField(max_length=32)
    sha1 = models.CharField(max_length=40)
    fields = models.JSONField(help_text="the control paragraph, in the package's field order")
    filename = models.CharField(max_length=500, help_text="the pool path apt sees")
    uploaded_by_name = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["name", "architecture", "-created"]
        constraints = [models.UniqueConstraint(fields=["name", "version", "architecture"], name="uniq_private_package")]

    def __str__(self) -> str:
        return f"{self.name} {self.version} {self.architecture}"


class RingRepository(TimeStampedModel):
    """What was last published for one ring (the tree itself is on disk, behind a symlink)."""

    ring = models.OneToOneField("approvals.Ring", on_delete=models.CASCADE, related_name="repository")
    generation = models.CharField(max_length=200, blank=True, default="")
    last_published = models.DateTimeField(null=True, blank=True)
    last_duration = models.FloatField(null=True, blank=True, help_text="seconds")
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    suites = models.JSONField(default=list, blank=True, help_text="[{suite, components, architectures, packages}]")
    package_count = models.PositiveIntegerField(default=0)
    fingerprint = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        ordering = ["ring__position", "ring__name"]

    def __str__(self) -> str:
        return f"repository of {self.ring_id}"


class CachedFile(models.Model):
    """An upstream file the pull-through cache holds, for statistics and LRU eviction."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    fetched = models.DateTimeField(auto_now_add=True)
    last_access = models.DateTimeField(db_index=True)
    hits = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.sha256


class CacheCounter(models.Model):
    """Counters of the pull-through cache (one row per name: hits, misses, bytes_fetched, ...)."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
