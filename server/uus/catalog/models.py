"""What upstream publishes: archives with their package indexes, and security notices with CVEs.

Versions that matching compares carry a `*_key` next to them: uus.core.debversion.version_key, a byte
string whose bytewise order is dpkg's order, so "installed < fixed" runs inside the database with an
index on SQLite and PostgreSQL alike (docs/decisions/0002-debian-version-sort-key.md).
"""

from __future__ import annotations

from django.db import models

from uus.core.models import TimeStampedModel

from .choices import NoticeKind, Pocket


class Upstream(TimeStampedModel):
    """An upstream APT archive (Ubuntu, Debian, a PPA, a vendor repository) that UUS mirrors metadata of."""

    name = models.SlugField(max_length=64, unique=True)
    url = models.CharField(max_length=500)
    suites = models.JSONField(default=list)
    components = models.JSONField(default=list)
    architectures = models.JSONField(default=list)
    keyring = models.CharField(max_length=500, help_text="keyring file kept in the data directory")
    is_enabled = models.BooleanField(default=True)
    last_sync_started = models.DateTimeField(null=True, blank=True)
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UpstreamIndex(TimeStampedModel):
    """One Packages index of an upstream: (suite, component, architecture) as the Release file lists it."""

    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="indexes")
    suite = models.CharField(max_length=100)
    codename = models.CharField(max_length=100, help_text="release codename: jammy for jammy-security")
    pocket = models.CharField(max_length=16, choices=Pocket.choices)
    component = models.CharField(max_length=100)
    architecture = models.CharField(max_length=32)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    variant = models.CharField(max_length=200, blank=True, default="", help_text="the file fetched")
    package_count = models.PositiveIntegerField(default=0)
    release_date = models.DateTimeField(null=True, blank=True)
    last_synced = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["upstream", "suite", "component", "architecture"]
        constraints = [
            models.UniqueConstraint(fields=["upstream", "suite", "component", "architecture"], name="uniq_index")
        ]

    def __str__(self) -> str:
        return f"{self.upstream.name} {self.suite}/{self.component}/{self.architecture}"


class ArchivePackage(models.Model):
    """A binary package version as an upstream index lists it. Rows are replaced per index on sync;
    no created/updated columns because a sync writes tens of thousands of them at once."""

    index = models.ForeignKey(UpstreamIndex, on_delete=models.CASCADE, related_name="packages")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=200)
    version_key = models.BinaryField(max_length=512)
    architecture = models.CharField(max_length=32)
    source = models.CharField(max_length=200)
    source_version = models.CharField(max_length=200)
    source_version_key = models.BinaryField(max_length=512)
    section = models.CharField(max_length=100, blank=True, default="")
    priority = models.CharField(max_length=32, blank=True, default="")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    filename = models.CharField(max_length=500)

    class Meta:
        indexes = [
            models.Index(fields=["name", "architecture"], name="archpkg_name_arch"),
            models.Index(fields=["source", "source_version_key"], name="archpkg_source"),
            models.Index(fields=["sha256"], name="archpkg_sha256"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} {self.architecture}"


class Cve(TimeStampedModel):
    id = models.CharField(max_length=32, primary_key=True)
    priority = models.CharField(max_length=16, blank=True, default="")
    priority_rank = models.PositiveSmallIntegerField(default=0, db_index=True)
    cvss = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.id


class Notice(TimeStampedModel):
    """A security notice: a USN, or an Ubuntu CVE record (UBUNTU-CVE-…), as imported from OSV."""

    id = models.CharField(max_length=64, primary_key=True)
    kind = models.CharField(max_length=8, choices=NoticeKind.choices)
    schema_version = models.CharField(max_length=16, blank=True, default="")
    summary = models.TextField(blank=True, default="")
    details = models.TextField(blank=True, default="")
    published = models.DateTimeField(db_index=True)
    modified = models.DateTimeField()
    priority = models.CharField(max_length=16, blank=True, default="")
    priority_rank = models.PositiveSmallIntegerField(default=0, db_index=True)
    aliases = models.JSONField(default=list, blank=True)
    related = models.JSONField(default=list, blank=True)
    upstream_ids = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    cves = models.ManyToManyField(Cve, through="NoticeCve", related_name="notices")

    class Meta:
        ordering = ["-published", "-id"]

    def __str__(self) -> str:
        return self.id


class NoticeCve(models.Model):
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE)
    cve = models.ForeignKey(Cve, on_delete=models.CASCADE)
    position = models.PositiveIntegerField(default=0)
    priority = models.CharField(max_length=16, blank=True, default="", help_text="as this notice rates it")
    cvss = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["notice", "cve"], name="uniq_notice_cve")]


class AffectedPackage(models.Model):
    """One affected entry of a notice: a source package on one release, vulnerable from `introduced`
    up to (not including) `fixed`. `fixed` empty means no fix is published. `is_pro` entries
    (ecosystem Ubuntu:Pro:…) are fixes that need Ubuntu Pro and are reported apart."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=100)
    release = models.CharField(max_length=16)
    is_lts = models.BooleanField(default=False)
    is_pro = models.BooleanField(default=False)
    pro_variant = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=200)
    codename = models.CharField(max_length=64, blank=True, default="")
    distro = models.CharField(max_length=100, blank=True, default="")
    purl = models.CharField(max_length=500, blank=True, default="")
    introduced = models.CharField(max_length=200, default="0")
    introduced_key = models.BinaryField(max_length=512)
    fixed = models.CharField(max_length=200, blank=True, default="")
    fixed_key = models.BinaryField(max_length=512, null=True, blank=True)
    versions = models.JSONField(default=list, blank=True)
    binaries = models.JSONField(default=list, blank=True)
    availability = models.CharField(max_length=500, blank=True, default="")  # a sentence with a URL
    cves = models.JSONField(
        default=list, blank=True, help_text="this entry's own CVE list (cves_map); empty: the notice's CVEs"
    )

    class Meta:
        ordering = ["release", "source", "ecosystem"]
        indexes = [models.Index(fields=["source", "release"], name="affected_source_release")]

    def __str__(self) -> str:
        return f"{self.notice_id} {self.ecosystem} {self.source} < {self.fixed or '(no fix)'}"
