"""A small fleet built from real data, and an independent reference for its exposure.

Machines come from the notices' own data (each affected entry's `versions` history, its fixed version
and its binary names and versions) and from the package index of a real Ubuntu 22.04 server ISO
(server/tests/data/usn-osv-sample/PROVENANCE.md). The reference reads the raw OSV JSON and asks the
real `dpkg --compare-versions` for every comparison: it shares no code with uus.catalog or
uus.exposure, so a parsing or ordering mistake in either shows up as a missing or extra finding.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "usn-osv-sample"
# derived/ holds one notice made from a real one (PROVENANCE.md): the superseding case the real data lacks
NOTICE_FILES = sorted((DATA / "usn").glob("*.json")) + sorted((DATA / "cve").glob("*.json"))
NOTICE_FILES += sorted((DATA / "derived").glob("*.json"))
ISO_PACKAGES = DATA / "jammy-iso" / "Packages.gz"
KERNEL_ABI = re.compile(r"\d+\.\d+\.\d+-\d+")


@dataclass
class FleetMachine:
    hostname: str
    release: str
    kernel: str = "5.15.0-60-generic"
    # (name, architecture, version, source, source_version, dpkg status)
    packages: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)


def load_notices() -> list[dict]:
    return [json.loads(p.read_text()) for p in NOTICE_FILES]


def ecosystem_release(ecosystem: str) -> tuple[str, bool]:
    """("22.04", is_pro) for Ubuntu:22.04:LTS, Ubuntu:25.10, Ubuntu:Pro:22.04:LTS, Ubuntu:Pro:Realtime:24.04:LTS."""
    parts = ecosystem.split(":")
    assert parts[0] == "Ubuntu", ecosystem
    is_pro = parts[1] == "Pro"
    release = next(p for p in parts[1:] if re.fullmatch(r"\d+\.\d+", p))
    return release, is_pro


def entry_range(entry: dict) -> tuple[str, str | None]:
    introduced, fixed = "0", None
    for r in entry.get("ranges", []):
        for ev in r.get("events", []):
            introduced = ev.get("introduced", introduced)
            fixed = ev.get("fixed", fixed)
    return introduced, fixed


def entry_cves(notice: dict, entry: dict) -> list[str]:
    """The issue's rule: the entry's cves_map, else the notice's `upstream`, else `related` (CVE ids only)."""
    mapped = [c["id"] for c in ((entry.get("database_specific") or {}).get("cves_map") or {}).get("cves", [])]
    for ids in (mapped, notice.get("upstream") or [], notice.get("related") or []):
        cves = [i.removeprefix("UBUNTU-") for i in ids if re.fullmatch(r"(UBUNTU-)?CVE-\d{4}-\d+", i)]
        if cves:
            return list(dict.fromkeys(cves))
    return []


def _binary_version(source_version: str, fixed: str | None, binary_fixed: str | None) -> str:
    """A binary's version for a given source version, by the shape the notice gives at the fix:
    bsdutils 1:2.34-0.1ubuntu9.5 from util-linux 2.34-0.1ubuntu9.5 carries the epoch at every version."""
    if fixed and binary_fixed and binary_fixed != fixed and binary_fixed.endswith(":" + fixed):
        return binary_fixed[: -len(fixed)] + source_version
    return source_version


def _kernel_name(name: str, fixed: str, version: str) -> str:
    """linux-image-unsigned-6.1.0-1034-oem at 6.1.0-1034.34 is linux-image-unsigned-6.1.0-1033-oem at 6.1.0-1033.33."""
    old, new = KERNEL_ABI.match(fixed), KERNEL_ABI.match(version)
    return name.replace(old.group(0), new.group(0)) if old and new else name


def _entry_binaries(entry: dict) -> list[dict]:
    binaries = (entry.get("ecosystem_specific") or {}).get("binaries") or []
    picked = binaries[:3] + [
        b for b in binaries[3:] if b["binary_name"] in ("bsdutils", "util-linux") or b["binary_name"].endswith("t64")
    ]
    return picked or [{"binary_name": entry["package"]["name"], "binary_version": entry_range(entry)[1]}]


def _iso_packages() -> list[tuple]:
    """The installed packages of a fresh Ubuntu 22.04.2 server ISO install (its real Packages index)."""
    out, fields = [], {}
    for line in [*gzip.decompress(ISO_PACKAGES.read_bytes()).decode().splitlines(), ""]:
        if not line.strip():
            if fields.get("Package"):
                name, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
                src = fields.get("Source", name)
                m = re.fullmatch(r"(\S+)(?: \((\S+)\))?", src)
                out.append((name, arch, version, m.group(1), m.group(2) or version, "installed"))
            fields = {}
        elif not line.startswith(" ") and ":" in line:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return out


def build_fleet(machines_per_release: int = 4) -> list[FleetMachine]:
    """Machines on every release the notices name; each picks, per affected source of its release, one
    real version (from the entry's history, the fix itself, or no package at all) by a fixed rotation."""
    by_release: dict[str, dict[str, list[tuple[str, dict]]]] = {}
    for notice in load_notices():
        for entry in notice["affected"]:
            release, _ = ecosystem_release(entry["package"]["ecosystem"])
            by_release.setdefault(release, {}).setdefault(entry["package"]["name"], []).append((notice["id"], entry))
    fleet: list[FleetMachine] = []
    for release in sorted(by_release):
        for i in range(machines_per_release):
            m = FleetMachine(hostname=f"m{release.replace('.', '')}-{i:02d}", release=release)
            chosen: dict[tuple[str, str], tuple] = {}
            for j, (source, entries) in enumerate(sorted(by_release[release].items())):
                _, entry = entries[(i + j) % len(entries)]
                if source.startswith("linux"):
                    continue  # kernels get their own machines below
                _, fixed = entry_range(entry)
                history = entry.get("versions") or []
                candidates = [*history[-1:], *history[:1], *history[len(history) // 2 : len(history) // 2 + 1]]
                candidates += [fixed] if fixed else []
                pick = (i * 3 + j) % (len(candidates) + 1)
                if pick == len(candidates):
                    continue  # this machine does not have the package
                version = candidates[pick]
                for b in _entry_binaries(entry):
                    status = "config-files" if (i + j) % 7 == 3 else "installed"  # removed, config kept
                    bv = _binary_version(version, fixed, b["binary_version"])
                    chosen[(b["binary_name"], "amd64")] = (b["binary_name"], "amd64", bv, source, version, status)
            m.packages = sorted(chosen.values())
            fleet.append(m)
    fleet += kernel_machines()
    fleet.append(FleetMachine(hostname="iso-2204", release="22.04", packages=sorted(_iso_packages())))
    return fleet


def kernel_machines() -> list[FleetMachine]:
    """Kernel cases from USN-6650-1 (linux-oem-6.1, 22.04), USN-7500-1 (linux-azure, 24.04) and USN-7800-1
    (linux-raspi-realtime, a Pro-only fix on 24.04): running the vulnerable kernel; running it with the fixed
    kernel installed (reboot pending); running the fix with the old one still installed; running another
    kernel while a vulnerable one is installed; running a kernel whose ABI merely starts like the vulnerable
    one; running the vulnerable kernel with only the fixed kernel's modules installed (no image to boot)."""
    out = []
    for notice_id, flavour in (("USN-6650-1", "oem"), ("USN-7500-1", "azure"), ("USN-7800-1", "raspi-realtime")):
        notice = next(n for n in load_notices() if n["id"] == notice_id)
        entry = notice["affected"][0]
        release, _ = ecosystem_release(entry["package"]["ecosystem"])
        source = entry["package"]["name"]
        _, fixed = entry_range(entry)
        old = entry["versions"][-1]
        image = next(b["binary_name"] for b in entry["ecosystem_specific"]["binaries"] if "image" in b["binary_name"])
        modules = next(
            b["binary_name"] for b in entry["ecosystem_specific"]["binaries"] if "modules" in b["binary_name"]
        )

        def pkgs(*versions, fixed=fixed, source=source, names=(image, modules)):
            return sorted(
                (_kernel_name(n, fixed, v), "amd64", v, source, v, "installed") for v in versions for n in names
            )

        def uname(v, flavour=flavour):
            return KERNEL_ABI.match(v).group(0) + "-" + flavour

        out += [
            FleetMachine(f"k-{flavour}-old", release, uname(old), pkgs(old)),
            FleetMachine(f"k-{flavour}-reboot", release, uname(old), pkgs(old, fixed)),
            FleetMachine(f"k-{flavour}-booted", release, uname(fixed), pkgs(old, fixed)),
            FleetMachine(f"k-{flavour}-other", release, "5.15.0-60-generic", pkgs(old)),
            # runs an ABI that only starts like the vulnerable one (…-1033 vs …-10330): not that kernel
            FleetMachine(f"k-{flavour}-prefix", release, KERNEL_ABI.match(old).group(0) + "0-" + flavour, pkgs(old)),
            # the fixed kernel's modules but not its image: nothing to reboot into, still exposed
            FleetMachine(
                f"k-{flavour}-noimage", release, uname(old), sorted({*pkgs(old), *pkgs(fixed, names=(modules,))})
            ),
        ]
    return out


@functools.cache
def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def runs(binary: str, uname_r: str) -> bool:
    """Whether kernel binary `binary` belongs to the running kernel `uname -r`: linux-image-5.15.0-60-generic
    runs as 5.15.0-60-generic exactly; flavourless ones (linux-headers-5.15.0-60) belong to each flavour of
    that ABI. 5.15.0-13 is not 5.15.0-130-generic."""
    _head, abi, flavour = re.fullmatch(r"(.*?)(\d+\.\d+\.\d+-\d+)(.*)", binary).groups()
    if flavour:
        return uname_r == abi + flavour
    return re.fullmatch(re.escape(abi) + r"(-.+)?", uname_r) is not None


def reference(fleet: list[FleetMachine], *, include_not_running: bool = False) -> dict[tuple, dict]:
    """{(hostname, notice, cve, binary): {status, pro_only, fixed_version}} by the issue's rule, from the raw JSON."""
    found: dict[tuple, dict] = {}
    notices = load_notices()
    for m in fleet:
        installed = [p for p in m.packages if p[5] == "installed"]
        for notice in notices:
            for entry in notice["affected"]:
                release, is_pro = ecosystem_release(entry["package"]["ecosystem"])
                if release != m.release:
                    continue
                introduced, fixed = entry_range(entry)
                source = entry["package"]["name"]
                for name, _arch, _v, src, sv, _st in installed:
                    if src != source or dpkg_lt(sv, introduced) or (fixed and not dpkg_lt(sv, fixed)):
                        continue
                    status = "fix_available" if fixed else "no_fix"
                    abi = KERNEL_ABI.search(name)
                    if source.startswith("linux") and abi:
                        if not runs(name, m.kernel):
                            status = "not_running"
                        elif fixed and any(
                            s == source and not dpkg_lt(v, fixed) and n.startswith("linux-image-")
                            for n, _a, _bv, s, v, _s in installed
                        ):
                            status = "fixed_reboot_pending"
                    if status == "not_running" and not include_not_running:
                        continue
                    for cve in entry_cves(notice, entry) or [None]:
                        key = (m.hostname, notice["id"], cve, name)
                        prev = found.get(key)
                        row = {"status": status, "pro_only": is_pro, "fixed_version": fixed}
                        # a plain-release entry beats a Pro one; among equals the highest fix applies
                        if (
                            prev is None
                            or (prev["pro_only"] and not is_pro)
                            or (
                                prev["pro_only"] == is_pro
                                and fixed
                                and prev["fixed_version"]
                                and dpkg_lt(prev["fixed_version"], fixed)
                            )
                        ):
                            found[key] = row
    return found
