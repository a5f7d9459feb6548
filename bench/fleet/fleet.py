"""A realistic fleet, generated from real Debian data (../shared/data/debian-packages).

Each release (Debian 12 bookworm, Debian 13 trixie) gets a base set of real binary packages with their
real versions and Source fields: the packages of a real Debian 12 machine (the dpkg-status sample),
completed from the release's Packages index up to the base size (about 1,800 packages). Roles (web,
db, build, app, minimal) add their own real packages on top.

Patch levels are real too: every package of a machine's set that bookworm-security / trixie-security
updates is at the main-archive version or at the security version. The security updates are put in a
fixed "arrival" order; a machine at patch level L (0 = never upgraded, LEVELS - 1 = up to date) has the
first L/(LEVELS-1) of them. Levels are spread like a real fleet: half the machines are current, a third
are one to three steps behind, the rest anywhere. One machine in ten has one to three packages no other
machine of its class has; one in a hundred has a package left as config-files.

Everything is seeded, so the same N gives the same fleet.
"""

from __future__ import annotations

import hashlib
import lzma
import random
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = 12
BASE_SIZE = 1800
ROLES = {  # role: (share of the fleet, extra packages from the release index)
    "web": (0.30, 220),
    "app": (0.25, 160),
    "db": (0.15, 120),
    "build": (0.10, 400),
    "minimal": (0.20, 0),
}
RELEASES = {"12": ("bookworm", 0.7), "13": ("trixie", 0.3)}

Entry = tuple[str, str, str, str, str, str]


class DataMissing(SystemExit):
    pass


def _stanzas(text: str):
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if not line or line[0] in " \t":
                continue
            key, sep, value = line.partition(":")
            if sep and key in ("Package", "Version", "Architecture", "Source", "Priority", "Status"):
                fields[key] = value.strip()
        if "Package" in fields and "Version" in fields:
            yield fields


def _entry(f: dict, status: str = "installed") -> Entry:
    name, version = f["Package"], f["Version"]
    source, source_version = name, version
    if "Source" in f:
        src = f["Source"]
        if "(" in src:
            source, _, rest = src.partition("(")
            source, source_version = source.strip(), rest.rstrip(")").strip()
        else:
            source = src.strip()
    return (name, f.get("Architecture", "amd64"), version, source, source_version, status)


def read_index(path: Path) -> dict[str, Entry]:
    """{name: entry} of a Packages.xz (amd64 and all), the highest listed version of each name."""
    out: dict[str, Entry] = {}
    with lzma.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for f in _stanzas(fh.read()):
            out[f["Package"]] = _entry(f)
    return out


@dataclass
class Release:
    version_id: str
    codename: str
    base: list[str]  # package names
    roles: dict[str, list[str]]
    main: dict[str, Entry]
    security: dict[str, Entry]  # name -> the newer entry from -security
    updates_order: list[str]  # source names in "arrival" order
    universe: list[str] = field(default_factory=list)  # names for unique extras

    def entry(self, name: str, level: int) -> Entry:
        sec = self.security.get(name)
        if sec is None:
            return self.main[name]
        cut = len(self.updates_order) * level // (LEVELS - 1)
        return sec if sec[3] in self._arrived(cut) else self.main[name]

    def _arrived(self, cut: int) -> frozenset:
        cache = self.__dict__.setdefault("_arrived_cache", {})
        if cut not in cache:
            cache[cut] = frozenset(self.updates_order[:cut])
        return cache[cut]


def load_releases(data: Path, base_size: int = BASE_SIZE) -> dict[str, Release]:
    pkgdir = data / "debian-packages"
    if not (pkgdir / "bookworm").is_dir():
        raise DataMissing(
            f"fleet data not found under {data}: expected {pkgdir}/bookworm/*_Packages.xz and the dpkg-status "
            "sample (the shared data folder, ../shared/data from the project root); pass --data PATH"
        )
    sample = lzma.open(pkgdir / "dpkg-status.debian12-sample.xz", "rt", encoding="utf-8").read()
    sample_names = [f["Package"] for f in _stanzas(sample) if f.get("Status", "").endswith(" installed")]
    releases = {}
    for version_id, (codename, _) in RELEASES.items():
        main = read_index(pkgdir / codename / f"{codename}_main_binary-amd64_Packages.xz")
        upd = read_index(pkgdir / codename / f"{codename}-updates_main_binary-amd64_Packages.xz")
        sec = read_index(pkgdir / codename / f"{codename}-security_main_binary-amd64_Packages.xz")
        main = {**main, **upd}  # the point release's updates are part of what everyone has
        security = {n: e for n, e in sec.items() if n in main and e[2] != main[n][2]}
        rng = random.Random(f"base-{codename}")
        names = [n for n in sample_names if n in main]
        # Fill up with packages that security updates touch first (servers do have openssl, curl...), then others.
        touched = sorted(n for n in security if n not in names)
        others = sorted(n for n in main if n not in names and n not in security)
        rng.shuffle(touched)
        rng.shuffle(others)
        pool = touched[: base_size // 5] + others
        base = names + pool[: max(0, base_size - len(names))]
        rest = pool[max(0, base_size - len(names)) :]
        roles, at = {}, 0
        for role, (_, extra) in ROLES.items():
            roles[role] = rest[at : at + extra]
            at += extra
        sources = sorted({security[n][3] for n in security})
        random.Random(f"arrival-{codename}").shuffle(sources)
        releases[version_id] = Release(
            version_id=version_id,
            codename=codename,
            base=base,
            roles=roles,
            main=main,
            security=security,
            updates_order=sources,
            universe=rest[at:],
        )
    return releases


@dataclass(frozen=True)
class MachineSpec:
    index: int
    hostname: str
    release: str
    role: str
    level: int
    extras: tuple[str, ...]
    config_files: str | None

    @property
    def klass(self) -> tuple:
        return (self.release, self.role, self.level, self.extras, self.config_files)


def machine_specs(n: int, releases: dict[str, Release], seed: int = 1) -> list[MachineSpec]:
    rng = random.Random(seed)
    rel_names = list(RELEASES)
    rel_weights = [RELEASES[r][1] for r in rel_names]
    role_names = list(ROLES)
    role_weights = [ROLES[r][0] for r in role_names]
    specs = []
    for i in range(n):
        rel = rng.choices(rel_names, rel_weights)[0]
        role = rng.choices(role_names, role_weights)[0]
        x = rng.random()
        if x < 0.5:
            level = LEVELS - 1
        elif x < 0.8:
            level = LEVELS - 1 - rng.randint(1, 3)
        else:
            level = rng.randint(0, LEVELS - 1)
        extras: tuple[str, ...] = ()
        if rng.random() < 0.10:
            universe = releases[rel].universe
            extras = tuple(sorted(rng.sample(universe, rng.randint(1, 3))))
        config_files = None
        if rng.random() < 0.01:
            config_files = rng.choice(releases[rel].base)
        specs.append(MachineSpec(i, f"{role}-{rel}-{i:06d}", rel, role, level, extras, config_files))
    return specs


def inventory(spec: MachineSpec, releases: dict[str, Release], level: int | None = None) -> list[Entry]:
    """The machine's package list, sorted by (name, architecture), at its (or the given) patch level."""
    r = releases[spec.release]
    lvl = spec.level if level is None else level
    names = [*r.base, *r.roles[spec.role], *spec.extras]
    out = {}
    for name in names:
        e = r.entry(name, lvl)
        if name == spec.config_files:
            e = (*e[:5], "config-files")
        out[(e[0], e[1])] = e
    return [out[k] for k in sorted(out)]


def machine_id(spec: MachineSpec) -> str:
    return hashlib.md5(spec.hostname.encode()).hexdigest()  # an id, not a security measure
