"""The version key must order exactly as `dpkg --compare-versions` does; these tests ask dpkg itself.

Real versions come from tests/data (see PROVENANCE.md). dpkg is run through one shell loop per CPU
rather than one Python subprocess per pair, which keeps ~6,000 real comparisons to a few seconds.
Sorting by the key and checking each adjacent pair with dpkg proves the whole order: dpkg's order is
a total preorder, so agreeing on every neighbour means agreeing on every pair (~8 million here).
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from uus.core.debversion import (
    DebVersion,
    InvalidVersion,
    compare,
    is_valid_version,
    parse_version,
    version_key,
)

DATA = Path(__file__).parent / "data"
DPKG = shutil.which("dpkg")
needs_dpkg = pytest.mark.skipif(DPKG is None, reason="dpkg is not installed")

_LOOP = r"""
while read -r a b; do
  dpkg --compare-versions "$a" lt "$b"; r=$?
  if [ $r = 0 ]; then echo "<"; continue; fi
  dpkg --compare-versions "$a" eq "$b"; r2=$?
  if [ $r = 1 ] && [ $r2 = 0 ]; then echo "="; elif [ $r = 1 ] && [ $r2 = 1 ]; then echo ">"; else echo "!"; fi
done
"""


def dpkg_order(pairs: list[tuple[str, str]]) -> list[str]:
    """'<', '=' or '>' from the real dpkg for each pair, in order."""
    if not pairs:
        return []
    n = max(1, min(4, os.cpu_count() or 1))
    chunks = [pairs[i::n] for i in range(n)]
    env = {**os.environ, "LC_ALL": "C"}
    procs = [
        subprocess.Popen(
            ["sh", "-c", _LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        for _ in chunks
    ]
    outs = [p.communicate("".join(f"{a} {b}\n" for a, b in c))[0].split() for p, c in zip(procs, chunks, strict=True)]
    result = [""] * len(pairs)
    for i, out in enumerate(outs):
        assert len(out) == len(chunks[i]), "dpkg loop lost lines"
        result[i::n] = out
    assert "!" not in result, "dpkg refused a version: " + str(pairs[result.index("!")])
    return result


def key_order(a: str, b: str) -> str:
    ka, kb = version_key(a), version_key(b)
    return "<" if ka < kb else "=" if ka == kb else ">"


def cmp_order(a: str, b: str) -> str:
    return "<=>"[compare(a, b) + 1]


def real_versions() -> list[str]:
    lines = (DATA / "debversions.txt").read_text().splitlines()
    return [v for v in lines if v and not v.startswith("#")]


def real_pairs() -> list[tuple[str, str, str, str]]:
    rows = (DATA / "debversion-pairs.tsv").read_text().splitlines()
    return [tuple(r.split("\t")) for r in rows if r and not r.startswith("#")]


# Hand-made cases: (a, relation, b) as dpkg sees them.
EDGE_CASES = [
    ("1.0~rc1", "<", "1.0"),
    ("1.0~~", "<", "1.0~~a"),
    ("1.0~~a", "<", "1.0~"),
    ("1.0~", "<", "1.0"),
    ("1.0", "<", "1.0a"),
    ("1.0a", "<", "1.0+"),
    ("1.0+", ">", "1.0-0.1"),  # upstream "1.0+" beats "1.0" before revisions count
    ("1.0", "=", "1.0-0"),
    ("1.0", "=", "0:1.0-0"),
    ("1.0a", "=", "1.0a0"),
    ("1.00", "=", "1.0"),
    ("1.0", "=", "1.000"),
    ("001", "=", "1"),
    ("1.2.3", "<", "1.10"),
    ("1.9", "<", "1.10"),
    ("1:1.0", ">", "9.9"),
    ("1:1.0", "<", "2:0.1"),
    ("10:1", ">", "9:1"),
    ("00:1", "=", "1"),
    ("1.0-1", "<", "1.0-1+b1"),
    ("1.0-1+b1", "<", "1.0-1.1"),
    ("1.0-1~bpo1", "<", "1.0-1"),
    ("1.0-1ubuntu1", ">", "1.0-1"),
    ("1.0-1ubuntu0.1", "<", "1.0-1ubuntu1"),
    ("2.34-0.1ubuntu9.5~1", "<", "2.34-0.1ubuntu9.5"),
    ("2.1.0-4ubuntu1.4+esm9+1", ">", "2.1.0-4ubuntu1.4+esm9"),
    ("1.0-1-1", ">", "1.0-1"),  # upstream "1.0-1" holds a hyphen
    ("1:2:3-1", ">", "1:2-1"),  # upstream "2:3" holds a colon
    ("1.0+dfsg", "<", "1.0.dfsg"),  # "+" sorts before "."
    ("1.0-a", "<", "1.0-+"),
    ("a", "<", "b"),  # no leading digit: dpkg warns but orders
    ("a1", ">", "1"),
    ("A", "<", "a"),
    ("Z", "<", "a"),
    ("~", "<", "0"),
    ("~~", "<", "~"),
    ("~a", ">", "~~"),
    ("1" + "0" * 300, ">", "9" * 299),  # digit runs longer than one length byte
    ("1" + "0" * 300, "<", "2" + "0" * 300),
    ("0" * 400 + "7", "=", "7"),
    ("9" * 255, ">", "9" * 254),
    ("9" * 254, ">", "9" * 253 + "~"),
    ("1.2" + "9" * 260 + "a", "<", "1.2" + "9" * 260 + "b"),
    ("4294967296", ">", "4294967295"),
    ("1.0.", "=", "1.0.0"),
    ("1.0..", ">", "1.0."),
    ("2147483647:1", ">", "2147483646:9"),
    ("8u482-ga~us1-0ubuntu1~16.04", "<", "8u482-ga~us1-0ubuntu1~18.04"),
    ("1:2.34-0.1ubuntu9.5", ">", "2.34-0.1ubuntu9.5"),
    ("2.4.68-1~deb12u1", "<", "2.4.71-1~deb12u1"),
    ("1.6-2.1+deb12u2", "<", "1.6-2.1+deb12u3"),
]


@pytest.mark.parametrize(("a", "rel", "b"), EDGE_CASES)
def test_edge_cases_key_and_compare(a, rel, b):
    assert key_order(a, b) == rel
    assert cmp_order(a, b) == rel
    inverse = {"<": ">", ">": "<", "=": "="}[rel]
    assert key_order(b, a) == inverse
    assert cmp_order(b, a) == inverse


@needs_dpkg
def test_edge_cases_agree_with_dpkg():
    got = dpkg_order([(a, b) for a, _, b in EDGE_CASES])
    assert got == [rel for _, rel, _ in EDGE_CASES]


def test_parse_version_parts():
    assert parse_version("1:2.34-0.1ubuntu9.5") == DebVersion(1, "2.34", "0.1ubuntu9.5")
    assert parse_version("1.0-1-1") == DebVersion(0, "1.0-1", "1")
    assert parse_version("1:2:3-1") == DebVersion(1, "2:3", "1")
    assert parse_version("1.0") == DebVersion(0, "1.0", "")
    assert str(parse_version("0:1.0-1")) == "1.0-1"
    syslinux = "3:6.04~git20190206.bf6db5b4+dfsg1-3ubuntu3"
    assert str(parse_version(syslinux)) == syslinux


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("", "empty"),
        (":1.0", "epoch in version is empty"),
        ("a:1.0", "epoch in version is not number"),
        ("-1:1.0", "epoch in version is not number"),
        ("1:", "nothing after colon"),
        ("1.0-", "revision number is empty"),
        ("-1", "version number is empty"),
        ("1:-1", "version number is empty"),
        ("1.0 1", "whitespace"),
        (" 1.0", "whitespace"),
        ("1.0\n", "whitespace"),
        ("1.0é", "non-ASCII"),
        ("99999999999:1", "epoch in version is too big"),
    ],
)
def test_invalid_versions_raise(version, reason):
    with pytest.raises(InvalidVersion, match=reason) as exc:
        version_key(version)
    assert isinstance(exc.value, ValueError)
    assert not is_valid_version(version)
    assert not is_valid_version(version, strict=False)


@pytest.mark.parametrize("version", [None, 1, b"1.0"])
def test_non_strings_are_invalid(version):
    assert not is_valid_version(version)
    with pytest.raises(InvalidVersion):
        version_key(version)


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("a1.0", "does not start with digit"),
        ("~1", "does not start with digit"),
        ("1_0", "invalid character in version number"),
        ("1:1.0-1:2", "invalid character in revision number"),
        ("1.0-a_b", "invalid character in revision number"),
    ],
)
def test_dpkg_warnings_are_refused_only_when_strict(version, reason):
    """dpkg still compares these (with a warning), so they get keys; strict validation refuses them."""
    assert is_valid_version(version, strict=False)
    assert not is_valid_version(version)
    with pytest.raises(InvalidVersion, match=reason):
        parse_version(version, strict=True)
    version_key(version)


@needs_dpkg
def test_dpkg_warning_versions_order_like_dpkg():
    odd = ["a1.0", "~1", "1_0", "1:1.0-1:2", "1.0-a_b", "1@", "1!", "1:1.0-1:1", "1.0-a", "1.0-_", "1_", "1["]
    pairs = list(itertools.combinations(odd, 2))
    assert [key_order(a, b) for a, b in pairs] == dpkg_order(pairs)


def test_real_versions_are_valid_and_keys_are_distinct_where_strings_differ():
    versions = real_versions()
    assert len(versions) >= 3000
    assert all(is_valid_version(v) for v in versions)
    # equal keys must mean dpkg-equal strings; real distinct versions are rarely equal
    keys = {}
    for v in versions:
        keys.setdefault(version_key(v), []).append(v)
    for same in keys.values():
        for a, b in itertools.combinations(same, 2):
            assert compare(a, b) == 0


@needs_dpkg
def test_real_versions_sorted_by_key_agree_with_dpkg_on_every_neighbour():
    """Sort ~4,000 real versions by key; dpkg must say each one is <= the next ('=' exactly when keys tie)."""
    versions = real_versions()
    random.Random(7).shuffle(versions)
    ordered = sorted(versions, key=version_key)
    neighbours = list(itertools.pairwise(ordered))
    want = [key_order(a, b) for a, b in neighbours]
    assert set(want) <= {"<", "="}
    # sorted neighbours are where a prefix would show: the first differing byte must decide
    for a, b in neighbours:
        ka, kb = version_key(a), version_key(b)
        assert ka == kb or not kb.startswith(ka), (a, b)
    got = dpkg_order(neighbours)
    wrong = [(p, w, g) for p, w, g in zip(neighbours, want, got, strict=True) if w != g]
    assert not wrong, f"{len(wrong)} neighbours disagree with dpkg, e.g. {wrong[:5]}"
    assert [cmp_order(a, b) for a, b in neighbours] == got


@needs_dpkg
def test_real_pairs_across_suites_agree_with_dpkg():
    """The same package in two suites (bookworm vs -security vs trixie, and USN versions vs fixed)."""
    rows = real_pairs()
    assert len(rows) >= 1500
    pairs = [(a, b) for _, _, a, b in rows]
    got = dpkg_order(pairs)
    wrong = [(r, g) for r, g in zip(rows, got, strict=True) if key_order(r[2], r[3]) != g]
    assert not wrong, f"{len(wrong)} pairs disagree with dpkg, e.g. {wrong[:5]}"
    assert [cmp_order(a, b) for a, b in pairs] == got
    # every USN 'versions' entry is below the notice's fixed version
    usn = [g for r, g in zip(rows, got, strict=True) if r[0].startswith("usn-osv")]
    assert usn and set(usn) == {"<"}


def test_key_matches_reference_compare_on_random_real_pairs():
    """Pure Python: 40,000 random pairs of real versions, key order == dpkg algorithm order."""
    versions = real_versions()
    rnd = random.Random(11)
    keys = {v: version_key(v) for v in versions}
    for _ in range(40_000):
        a, b = rnd.choice(versions), rnd.choice(versions)
        ka, kb = keys[a], keys[b]
        assert (ka > kb) - (ka < kb) == compare(a, b), (a, b)


def _synthetic(rnd: random.Random) -> str:
    """Short versions dense in the characters where orders can go wrong."""

    def run(alphabet: str, n: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, n)))

    upstream = rnd.choice("0123456789") + run("0019a~~.+Zb-:", 6)
    version = upstream.rstrip("-:") or "0"
    if ":" in version or rnd.random() < 0.2:
        version = f"{rnd.choice(['0', '1', '01', '2', '10'])}:{version}"
    if "-" in version or rnd.random() < 0.5:
        version += "-" + (rnd.choice("01~a") + run("0019a~.+", 4))
    return version


@needs_dpkg
def test_synthetic_versions_agree_with_dpkg():
    """3,000 random short versions built from the risky characters, neighbours checked by dpkg."""
    rnd = random.Random(2026)
    versions = sorted({_synthetic(rnd) for _ in range(3000)}, key=version_key)
    neighbours = list(itertools.pairwise(versions))
    got = dpkg_order(neighbours)
    wrong = [(p, g) for p, g in zip(neighbours, got, strict=True) if key_order(*p) != g]
    assert not wrong, wrong[:5]


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None
else:
    # keep hypothesis' caches out of the work tree
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "uus-hypothesis"))

if given is not None:
    _digits = st.text("0123456789", min_size=1, max_size=4)
    _tail = st.text("0123456789abzAZ~.+-:", max_size=8)
    _rev = st.text("0123456789abz~.+", min_size=1, max_size=6)

    @st.composite
    def versions(draw):
        epoch = draw(st.one_of(st.just(""), _digits.map(lambda d: d + ":")))
        upstream = draw(_digits) + draw(_tail)
        if not epoch:
            upstream = upstream.replace(":", ".")
        revision = draw(st.one_of(st.just(""), _rev.map(lambda r: "-" + r)))
        if not revision and "-" in upstream:
            revision = "-0"
        return epoch + upstream + revision

    @settings(max_examples=1500, deadline=None, database=None)
    @given(versions(), versions())
    def test_hypothesis_key_order_is_compare_order(a, b):
        ka, kb = version_key(a), version_key(b)
        assert (ka > kb) - (ka < kb) == compare(a, b)
        assert ka == kb or not (ka.startswith(kb) or kb.startswith(ka)), "a key is a prefix of another"

    @settings(max_examples=300, deadline=None, database=None)
    @given(versions(), versions(), versions())
    def test_hypothesis_key_order_is_transitive_and_consistent(a, b, c):
        ordered = sorted([a, b, c], key=version_key)
        assert compare(ordered[0], ordered[1]) <= 0
        assert compare(ordered[1], ordered[2]) <= 0
        assert compare(ordered[0], ordered[2]) <= 0
