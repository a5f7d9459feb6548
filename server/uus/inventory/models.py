"""Machines, their enrollment, and their installed packages stored once (docs/decisions/0003).

Storage in three layers, each deduplicated (see the ADR for sizes and the reasons):

    Package            one row per distinct (name, architecture, version, source, source_version),
                       with dpkg-ordered byte keys so "installed < fixed" is an indexed comparison
    PackageChunk       a content-addressed slice of an inventory: the packages whose name falls into
                       one of BUCKETS hash buckets, with their dpkg status (PackageChunkMember rows)
    PackageSet         one whole inventory, keyed by its inventory hash: the list of its chunks
                       (PackageSetChunk rows); machines with identical inventories share one set

A machine points at its set. Two machines that differ in one package share every chunk but one, so
a fleet stores each distinct slice once and each distinct inventory as ~BUCKETS small rows.
Installed = Machine -> PackageSet -> PackageSetChunk -> PackageChunkMember -> Package, all joins on
integer keys, so exposure queries run inside the database on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from uus.core.models import TimeStampedModel

from .choices import PackageStatus


class EnrollmentToken(TimeStampedModel):
    """Lets machines register. Only a SHA-256 of the key is stored; the key is printed once."""

    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    comment = models.CharField(max_length=200, blank=True, default="")
    group = models.CharField(max_length=200, blank=True, default="", help_text="group new machines join")
    expires = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    is_revoked = models.BooleanField(default=False)
    created_by_name = models.CharField(max_length=150, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created"]

    @property
    def is_usable(self) -> bool:
        if self.is_revoked:
            return False
        if self.expires and self.expires <= timezone.now():
            return False
        return not (self.max_uses is not None and self.uses >= self.max_uses)


class Package(models.Model):
    """A binary package version as machines report it, stored once for the whole fleet.

    Immutable: rows are only ever added (a process-wide cache maps the five identifying fields to the
    id). `version_key`/`source_version_key` are uus.core.debversion.version_key(): bytes whose order
    is dpkg's, so `source_version_key < version_key(fixed)` runs on an index.
    """

    id = models.AutoField(primary_key=True)  # 4 bytes: distinct packages stay far below 2**31
    name = models.CharField(max_length=255)
    architecture = models.CharField(max_length=64)
    version = models.CharField(max_length=255)
    source = models.CharField(max_length=255)
    source_version = models.CharField(max_length=255)
    version_key = models.BinaryField()
    source_version_key = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name", "architecture", "version", "source", "source_version"], name="package_identity"
            ),
        ]
        indexes = [
            models.Index(fields=["name", "version_key"], name="package_name_version"),
            models.Index(fields=["source", "source_version_key"], name="package_source_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name}:{self.architecture} {self.version}"


class PackageChunk(models.Model):
    """A content-addressed slice of inventories: the entries of one name bucket, shared by every set
    that has exactly these entries in that bucket. `digest` is the sha256 of their canonical lines."""

    id = models.AutoField(primary_key=True)
    digest = models.CharField(max_length=64, unique=True)
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)


class PackageChunkMember(models.Model):
    """One package (with its dpkg status) in one chunk. No surrogate key: the pair is the key.

    On SQLite this table and PackageSetChunk are WITHOUT ROWID tables (migration 0008): the rows
    are stored in their primary key's order with no hidden rowid and no second copy of the key,
    40 % less space for the two largest inventory tables. A later migration that rebuilds either
    table on SQLite must keep that."""

    pk = models.CompositePrimaryKey("chunk_id", "package_id")
    # no index of its own: the primary key (chunk_id, package_id) serves lookups by chunk
    chunk = models.ForeignKey(PackageChunk, on_delete=models.CASCADE, related_name="members", db_index=False)
    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="+", db_index=False)
    status = models.PositiveSmallIntegerField(choices=PackageStatus.choices, default=PackageStatus.INSTALLED)

    class Meta:
        indexes = [models.Index(fields=["package", "chunk"], name="chunkmember_package")]


class PackageSet(models.Model):
    """One whole inventory, keyed by its inventory hash; machines with the same packages share it.
    Sets no machine points at are deleted by the periodic job inventory.tasks.package_sets_collect."""

    id = models.AutoField(primary_key=True)
    hash = models.CharField(max_length=64, unique=True)
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"set {self.hash[:12]} ({self.size} packages)"


class PackageSetChunk(models.Model):
    pk = models.CompositePrimaryKey("package_set_id", "chunk_id")
    # no index of its own: the primary key (package_set_id, chunk_id) serves lookups by set
    package_set = models.ForeignKey(PackageSet, on_delete=models.CASCADE, related_name="set_chunks", db_index=False)
    chunk = models.ForeignKey(PackageChunk, on_delete=models.PROTECT, related_name="set_chunks", db_index=False)

    class Meta:
        indexes = [models.Index(fields=["chunk", "package_set"], name="setchunk_chunk")]


class Machine(TimeStampedModel):
    """A registered machine: its facts as the agent last reported them, its credentials (hashes
    only) and a pointer to its current inventory."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hostname = models.CharField(max_length=255, db_index=True)
    fqdn = models.CharField(max_length=255, blank=True, default="")
    # Not indexed: only a registration looks machines up by it, together with the (indexed) hostname.
    machine_id = models.CharField(max_length=128, blank=True, default="")
    os_id = models.CharField(max_length=64, blank=True, default="")
    os_version_id = models.CharField(max_length=64, blank=True, default="")
    os_codename = models.CharField(max_length=64, blank=True, default="")
    os_pretty_name = models.CharField(max_length=255, blank=True, default="")
    release = models.CharField(
        max_length=64, blank=True, default="", db_index=True, help_text='"22.04", "12": VERSION_ID, else the codename'
    )
    kernel = models.CharField(max_length=255, blank=True, default="")
    architecture = models.CharField(max_length=64, blank=True, default="")
    time_zone = models.CharField(
        max_length=64, blank=True, default="", help_text="IANA zone the machine runs in; empty when unknown"
    )
    is_reboot_required = models.BooleanField(default=False)
    reboot_required_packages = models.JSONField(default=list, blank=True)
    apt_sources = models.JSONField(default=list, blank=True)
    agent_version = models.CharField(max_length=64, blank=True, default="")
    facts_hash = models.CharField(
        max_length=16, blank=True, default="", help_text="digest of the facts last stored (facts_digest)"
    )

    registered = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    inventory_updated = models.DateTimeField(null=True, blank=True)
    inventory_hash = models.CharField(max_length=64, blank=True, default="")
    package_set = models.ForeignKey(
        PackageSet, null=True, blank=True, on_delete=models.PROTECT, related_name="machines"
    )

    is_revoked = models.BooleanField(default=False)
    is_clone_suspected = models.BooleanField(default=False)
    clone_suspected_at = models.DateTimeField(null=True, blank=True)
    enrollment_group = models.CharField(max_length=200, blank=True, default="", db_index=True)
    enrollment_token = models.ForeignKey(
        EnrollmentToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="machines"
    )

    # Credentials: `Authorization: Machine <client_id>:<secret>`. Only hashes are stored
    # (services.credential_hash: 128 bits of SHA-256).
    client_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=32)
    exchange_token_hash = models.CharField(max_length=32, blank=True, default="")
    previous_exchange_token_hash = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["hostname", "id"]
        indexes = [
            # Exposure counts machines per (package set, release, running kernel) on every search and on
            # the dashboard; with exactly these columns that count is an index-only scan.
            models.Index(fields=["package_set", "release", "kernel", "is_revoked"], name="machine_exposure_group"),
        ]

    def __str__(self) -> str:
        return self.hostname

    @property
    def package_count(self) -> int:
        return self.package_set.size if self.package_set_id else 0


class InventoryChange(models.Model):
    """A machine moved from one inventory to another: its package history, one row per change.

    Sets are immutable and content-addressed, so the package changes themselves (installed,
    upgraded, removed...) are the difference of the two sets, computed when someone reads them
    (selectors.inventory_change_packages). A fleet upgrading from one inventory to the next costs one
    small row per machine instead of a row per changed package (docs/decisions/0003). Sets named here
    are kept by the collector until the row ages out (`inventory_history_days`).
    """

    id = models.BigAutoField(primary_key=True)
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="inventory_changes", db_index=False)
    time = models.DateTimeField(default=timezone.now)
    old_set = models.ForeignKey(PackageSet, on_delete=models.PROTECT, related_name="+", db_index=False)
    new_set = models.ForeignKey(PackageSet, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [
            models.Index(fields=["machine", "-time"], name="inventorychange_machine_time"),
            # the collector asks whether a set is still named by history
            models.Index(fields=["old_set"], name="inventorychange_old_set"),
            models.Index(fields=["new_set"], name="inventorychange_new_set"),
            models.Index(fields=["time"], name="inventorychange_time"),
        ]
