"""Catalog rows for approval tests: an upstream with a release and a security index, like the
acceptance's loopback Debian archive (jq 1.6-2.1+deb12u2 in bookworm, deb12u3 in bookworm-security)."""

from __future__ import annotations

from uus.catalog.models import AffectedPackage, ArchivePackage, Notice, Upstream, UpstreamIndex
from uus.core.debversion import version_key

JQ_OLD = "1.6-2.1+deb12u2"
JQ_NEW = "1.6-2.1+deb12u3"


def upstream_make(name: str = "deb") -> dict[str, UpstreamIndex]:
    up = Upstream.objects.create(
        name=name, url="http://127.0.0.1:9/debian", suites=["bookworm", "bookworm-security"], keyring="/none"
    )
    return {
        pocket: UpstreamIndex.objects.create(
            upstream=up, suite=suite, codename="bookworm", pocket=pocket, component="main", architecture="amd64"
        )
        for suite, pocket in (("bookworm", "release"), ("bookworm-security", "security"))
    }


def archive_add(index: UpstreamIndex, name: str, version: str, source: str | None = None) -> ArchivePackage:
    return ArchivePackage.objects.create(
        index=index,
        name=name,
        version=version,
        version_key=version_key(version),
        architecture="amd64",
        source=source or name,
        source_version=version,
        source_version_key=version_key(version),
        sha256=f"{abs(hash((name, version))):064x}"[:64],
        filename=f"pool/main/{name[0]}/{name}/{name}_{version}_amd64.deb",
    )


def jq_archive() -> dict[str, UpstreamIndex]:
    idx = upstream_make()
    for v, pocket in ((JQ_OLD, "release"), (JQ_NEW, "security")):
        archive_add(idx[pocket], "jq", v, "jq")
        archive_add(idx[pocket], "libjq1", v, "jq")
    return idx


def jq_notice(priority: str = "high", rank: int = 4) -> Notice:
    notice = Notice.objects.create(
        id="DSA-TEST-1",
        kind="usn",
        published="2024-01-01T00:00Z",
        modified="2024-01-01T00:00Z",
        priority=priority,
        priority_rank=rank,
    )
    AffectedPackage.objects.create(
        notice=notice,
        ecosystem="Debian:12",
        release="12",
        source="jq",
        introduced_key=version_key("0"),
        fixed=JQ_NEW,
        fixed_key=version_key(JQ_NEW),
    )
    return notice


def rings_make() -> None:
    """The rings migration 0001 creates: a transactional test's flush removes them for later tests."""
    from uus.approvals.models import Ring

    Ring.objects.get_or_create(name="test", defaults={"position": 10, "description": "a few machines first"})
    Ring.objects.get_or_create(name="production", defaults={"position": 100, "description": "the rest"})
