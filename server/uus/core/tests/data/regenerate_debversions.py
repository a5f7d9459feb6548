"""Rebuild debversions.txt and debversion-pairs.tsv from the real data in ../shared/data.

Run from the repository root: python server/uus/core/tests/data/regenerate_debversions.py [SHARED_DATA]
Deterministic (fixed seed). Not run by the tests: they read the committed text files only.
"""

import glob
import gzip
import json
import lzma
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../../../../shared/data")
SEED = 20261125
TOTAL = 4000


def packages(path):
    """(package, version, source_version) for each stanza of a Packages file."""
    opener = lzma.open if path.endswith(".xz") else gzip.open
    pkg = ver = src = None
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("Package: "):
                pkg, ver, src = line[9:].strip(), None, None
            elif line.startswith("Version: "):
                ver = line[9:].strip()
            elif line.startswith("Source: ") and "(" in line:
                src = line.split("(", 1)[1].strip().rstrip(")")
            elif line == "\n" and pkg:
                yield pkg, ver, src or ver
                pkg = None
    if pkg:
        yield pkg, ver, src or ver


def main():
    rnd = random.Random(SEED)
    deb = os.path.join(DATA, "debian-packages")
    suites = {
        s: {p: v for p, v, _ in packages(f"{deb}/{s.split('-')[0]}/{s}_main_binary-amd64_Packages.xz")}
        for s in ("bookworm", "bookworm-security", "trixie", "trixie-security")
    }
    chosen = {}  # version -> origin, insertion ordered

    def add(v, origin):
        chosen.setdefault(v, origin)

    osv_pairs = []
    for p in sorted(glob.glob(f"{DATA}/usn-osv/osv/*/*.json")):
        doc = json.load(open(p))
        for a in doc["affected"]:
            fixed = [e["fixed"] for r in a["ranges"] for e in r["events"] if "fixed" in e]
            for v in a.get("versions", []) + fixed:
                add(v, "usn-osv")
            for b in a.get("ecosystem_specific", {}).get("binaries", []):
                add(b["binary_version"], "usn-osv")
            if fixed:
                osv_pairs += [(a["package"]["name"], v, fixed[0]) for v in a.get("versions", [])]
    for _, v, s in packages(f"{DATA}/ubuntu-packages/jammy-22.04-server-iso/dists/jammy/main/binary-amd64/Packages.gz"):
        add(v, "ubuntu-jammy-iso")
        add(s, "ubuntu-jammy-iso")
    with lzma.open(f"{deb}/dpkg-query.debian12-sample.tsv.xz", "rt") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            add(cols[1], "dpkg-query-debian12")
            if cols[4]:
                add(cols[4], "dpkg-query-debian12")
    tracker = set()
    for name in ("DSA", "DLA"):
        with lzma.open(f"{DATA}/debian-security-tracker/{name}-list.xz", "rt") as f:
            for line in f:
                m = re.match(r"\s+\[\w+\] - \S+ (\S+)", line)
                if m and not m.group(1).startswith("<"):
                    tracker.add(m.group(1))
    for v in rnd.sample(sorted(tracker), 500):
        add(v, "debian-security-tracker")

    pool = sorted({v for s in suites.values() for v in s.values()})
    rnd.shuffle(pool)
    features = [
        (r"~", 400),
        (r":", 300),
        (r"\d{8,}", 200),
        (r"\+b\d+$", 80),
        (r"[a-z]\d", 250),
        (r"(^|\D)0\d", 150),
        (r"(\..*){5,}", 100),
        (r"\+.*\+", 150),
        (r"[A-Z]", 50),
    ]
    for pattern, cap in features:
        n = 0
        for v in pool:
            if n >= cap:
                break
            if re.search(pattern, v) and v not in chosen:
                add(v, "debian-index")
                n += 1
    for v in pool:
        if len(chosen) >= TOTAL:
            break
        add(v, "debian-index")

    with open(os.path.join(HERE, "debversions.txt"), "w") as f:
        f.write("# Real Debian/Ubuntu version strings, one per line; see PROVENANCE.md.\n")
        for v in sorted(chosen):
            f.write(f"{v}\n")

    pairs = []
    seen = set()

    def pair(origin, pkg, a, b):
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            pairs.append((origin, pkg, a, b))

    for old, new, origin in (
        ("bookworm", "bookworm-security", "bookworm>bookworm-security"),
        ("trixie", "trixie-security", "trixie>trixie-security"),
        ("bookworm-security", "trixie-security", "bookworm-security>trixie-security"),
    ):
        for p in sorted(suites[new]):
            if p in suites[old]:
                pair(origin, p, suites[old][p], suites[new][p])
    common = sorted(set(suites["bookworm"]) & set(suites["trixie"]))
    for p in rnd.sample(common, 900):
        pair("bookworm>trixie", p, suites["bookworm"][p], suites["trixie"][p])
    for pkg, a, b in osv_pairs:
        pair("usn-osv versions>fixed", pkg, a, b)
    with open(os.path.join(HERE, "debversion-pairs.tsv"), "w") as f:
        f.write("# origin\tpackage\tversion_a\tversion_b   (same package, two suites); see PROVENANCE.md\n")
        for row in pairs:
            f.write("\t".join(row) + "\n")
    print(f"{len(chosen)} versions, {len(pairs)} pairs")


if __name__ == "__main__":
    main()
