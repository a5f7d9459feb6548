"""Debian version order inside the database: the stored `*_key` columns order and compare in SQL as
dpkg orders versions, on SQLite (BLOB) and PostgreSQL (bytea) alike, and the (source, version key)
index serves "older than the fixed version" lookups. The key itself is proven against the real dpkg
in uus/core/tests/test_debversion.py; this proves the databases keep that order."""

from __future__ import annotations

import functools
import itertools
import random

import pytest
from django.db import connection

from uus.catalog.models import ArchivePackage, Upstream, UpstreamIndex
from uus.core.debversion import compare, version_key
from uus.core.tests.test_debversion import dpkg_order, needs_dpkg, real_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_versions():
    upstream = Upstream.objects.create(name="u", url="http://127.0.0.1:9/", keyring="/dev/null")
    index = UpstreamIndex.objects.create(
        upstream=upstream, suite="s", codename="s", pocket="release", component="main", architecture="amd64"
    )
    versions = real_versions()
    ArchivePackage.objects.bulk_create(
        [
            ArchivePackage(
                index=index,
                name=f"p{i}",
                version=v,
                version_key=version_key(v),
                architecture="amd64",
                source="src" if i % 2 else "other",
                source_version=v,
                source_version_key=version_key(v),
                sha256="0" * 64,
                filename=f"pool/p{i}.deb",
            )
            for i, v in enumerate(versions)
        ],
        batch_size=1000,
    )
    return versions


def test_order_by_the_key_in_sql_is_dpkg_order(stored_versions):
    in_sql = list(ArchivePackage.objects.order_by("version_key", "version").values_list("version", flat=True))
    assert len(in_sql) == len(stored_versions) >= 4000
    # neighbours in SQL order are never in dpkg's wrong order (the reference comparison, proven against dpkg)
    wrong = [(a, b) for a, b in itertools.pairwise(in_sql) if compare(a, b) > 0]
    assert not wrong, wrong[:5]
    assert in_sql == sorted(stored_versions, key=lambda v: (functools.cmp_to_key(compare)(v), v))


@needs_dpkg
def test_comparisons_in_sql_agree_with_dpkg(stored_versions):
    """`version_key < key(b)` in a WHERE clause, for 100 real versions b, against dpkg itself."""
    rnd = random.Random(5)
    probes = rnd.sample(stored_versions, 100)
    sample = rnd.sample(stored_versions, 12)
    pairs = [(a, b) for b in probes for a in sample]
    dpkg = dict(zip(pairs, dpkg_order(pairs), strict=True))
    rows = ArchivePackage.objects.filter(version__in=sample)
    for b in probes:
        below = set(rows.filter(version_key__lt=version_key(b)).values_list("version", flat=True))
        assert below == {a for a in sample if dpkg[(a, b)] == "<"}, b
        equal = set(rows.filter(version_key=version_key(b)).values_list("version", flat=True))
        assert equal == {a for a in sample if dpkg[(a, b)] == "="}, b


def test_an_index_serves_lookups_below_a_fixed_version(stored_versions):
    qs = ArchivePackage.objects.filter(source="src", source_version_key__lt=version_key("2.36-9+deb12u7"))
    assert qs.count() == sum(1 for i, v in enumerate(stored_versions) if i % 2 and compare(v, "2.36-9+deb12u7") < 0)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE catalog_archivepackage")
            cur.execute("SET LOCAL enable_seqscan = off")  # may the planner use an index at all?
            plan = qs.explain()
    else:
        plan = qs.explain()
    assert "archpkg_source" in plan, plan
