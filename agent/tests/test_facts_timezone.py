"""The optional `timezone` fact (protocol/v1 "Facts"): /etc/timezone first, else the zone the
/etc/localtime symlink names, else null; read under --root only, never from the host."""

from __future__ import annotations

import os
from pathlib import Path

from uus_agent import facts
from uus_agent.state import State


def test_etc_timezone_is_read_first(root: Path) -> None:
    (root / "etc" / "timezone").write_text("\nEurope/Berlin\n")
    os.symlink("/usr/share/zoneinfo/America/New_York", str(root / "etc" / "localtime"))
    assert facts.timezone(str(root)) == "Europe/Berlin"


def test_localtime_symlink_absolute_or_relative(root: Path) -> None:
    link = root / "etc" / "localtime"
    os.symlink("/usr/share/zoneinfo/America/New_York", str(link))
    assert facts.timezone(str(root)) == "America/New_York"
    link.unlink()
    os.symlink("../usr/share/zoneinfo/Etc/UTC", str(link))
    assert facts.timezone(str(root)) == "Etc/UTC"


def test_nothing_or_nonsense_is_null(root: Path) -> None:
    assert facts.timezone(str(root)) is None
    (root / "etc" / "localtime").write_bytes(b"TZif2 a copied file, not a link")
    assert facts.timezone(str(root)) is None
    for bad in ("../../etc/passwd", "/etc/passwd", "Europe/ Berlin", "x" * 65):
        (root / "etc" / "timezone").write_text(bad + "\n")
        assert facts.timezone(str(root)) is None, bad


def test_gather_reports_it(root: Path, state_dir: Path) -> None:
    (root / "etc" / "timezone").write_text("Asia/Tokyo\n")
    gathered = facts.gather(str(root), State(str(state_dir)))
    assert gathered["timezone"] == "Asia/Tokyo"
