"""The uus-agent `.deb`, built from this very package with dpkg-deb.

The UUS server builds it (`uus agent publish`, and at first start) and serves it from its own
repository in suite `uus-local`, so a machine installs the agent with plain apt, the same way it
later receives every update. Architecture `all`: the agent is pure Python 3.8+ on the system
interpreter.

Layout of the package:

    /usr/lib/python3/dist-packages/uus_agent/*.py   the agent
    /usr/bin/uus-agent                              #!/usr/bin/python3 entry point
    /lib/systemd/system/uus-agent.service           enabled on install; starts once registered
    /etc/uus-agent/agent.conf                       conffile: every key with its default
    /usr/share/doc/uus-agent/copyright

Maintainer scripts leave systemd alone when dpkg runs on another root (`DPKG_ROOT`, as in tests
and image builds) or when systemd is not running. An upgrade run by the agent itself must not wait
for its own restart, so postinst asks systemd for it without blocking.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional

from uus_agent import __version__

PACKAGE = "uus-agent"
HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGING = os.path.join(HERE, "packaging")

CONTROL = """Package: uus-agent
Version: {version}
Architecture: all
Maintainer: UUS maintainers <uus@localhost>
Depends: python3 (>= 3.8), apt, dpkg, gpg
Section: admin
Priority: optional
Installed-Size: {installed_kib}
Homepage: https://github.com/uus-project/uus
Description: agent of the UUS update server
 Reports this machine's facts and installed packages to a UUS (Ubuntu Update
 Server) and runs the package jobs its administrators approve, with apt.
 Register the machine once with `uus-agent register --server URL --token TOKEN`.
"""

POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    systemctl enable uus-agent.service >/dev/null 2>&1 || true
    # --no-block: an upgrade the agent runs itself must not wait for the agent to stop
    systemctl --no-block try-restart uus-agent.service >/dev/null 2>&1 || true
fi
exit 0
"""

PRERM = """#!/bin/sh
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --no-block stop uus-agent.service >/dev/null 2>&1 || true
fi
# byte code Python wrote beside the modules (what py3clean does for packages built with dh_python3)
rm -rf "${DPKG_ROOT:-}/usr/lib/python3/dist-packages/uus_agent/__pycache__"
exit 0
"""

POSTRM = """#!/bin/sh
set -e
if [ "$1" = purge ]; then
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl disable uus-agent.service >/dev/null 2>&1 || true
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
    rm -rf "${DPKG_ROOT:-}/var/lib/uus-agent"
fi
exit 0
"""

ENTRY_POINT = """#!/usr/bin/python3
import sys

from uus_agent.cli import main

sys.exit(main())
"""

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: uus-agent

Files: *
Copyright: UUS maintainers
License: GPL-3.0-or-later
 On Debian systems, the full text of the GNU General Public License version 3
 can be found in /usr/share/common-licenses/GPL-3.
"""


# Every file's time and dpkg-deb's archive times: the same sources always give the same bytes, so a
# server that builds the package again finds the one it already publishes (and apt sees no change).
BUILD_EPOCH = 1700000000


class BuildError(Exception):
    """dpkg-deb is missing or refused to build the package."""


def deb_filename(version: str = __version__) -> str:
    return "%s_%s_all.deb" % (PACKAGE, version)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def _tree() -> Dict[str, str]:
    """{path inside the package: source file} of everything but DEBIAN/."""
    files = {
        "usr/lib/python3/dist-packages/uus_agent/" + name: os.path.join(HERE, name)
        for name in sorted(os.listdir(HERE))
        if name.endswith(".py")
    }
    files["lib/systemd/system/uus-agent.service"] = os.path.join(PACKAGING, "uus-agent.service")
    files["etc/uus-agent/agent.conf"] = os.path.join(PACKAGING, "agent.conf")
    return files


def build(out_dir: str, version: str = __version__, dpkg_deb: Optional[str] = None) -> str:
    """Build the package into `out_dir` and return its path."""
    tool = shutil.which("dpkg-deb") if dpkg_deb is None else dpkg_deb
    if not tool:
        raise BuildError("dpkg-deb is needed to build the uus-agent package (Debian package dpkg)")
    with tempfile.TemporaryDirectory(prefix="uus-agent-deb-") as root:
        installed = 0
        md5sums: List[str] = []
        for inside, source in _tree().items():
            target = os.path.join(root, inside)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
            os.chmod(target, 0o644)
        _write(os.path.join(root, "usr/bin/uus-agent"), ENTRY_POINT, 0o755)
        _write(os.path.join(root, "usr/share/doc/uus-agent/copyright"), COPYRIGHT)
        for dirpath, _dirs, names in os.walk(root):
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, "rb") as f:
                    data = f.read()
                installed += len(data)
                if not rel.startswith("etc/"):  # conffiles have their own checksums in dpkg
                    md5sums.append("%s  %s\n" % (hashlib.md5(data).hexdigest(), rel))
        debian = os.path.join(root, "DEBIAN")
        _write(
            os.path.join(debian, "control"),
            CONTROL.format(version=version, installed_kib=(installed + 1023) // 1024),
        )
        _write(os.path.join(debian, "conffiles"), "/etc/uus-agent/agent.conf\n")
        _write(os.path.join(debian, "md5sums"), "".join(sorted(md5sums)))
        for script, text in (("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)):
            _write(os.path.join(debian, script), text, 0o755)
        for dirpath, dirs, names in os.walk(root):
            for name in dirs + names:
                os.utime(os.path.join(dirpath, name), (BUILD_EPOCH, BUILD_EPOCH))
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, deb_filename(version))
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(BUILD_EPOCH))
        try:
            r = subprocess.run(
                [tool, "--root-owner-group", "--build", root, out],
                capture_output=True,
                text=True,
                check=False,
                env=env,
            )
        except OSError as e:
            raise BuildError("cannot run %s: %s" % (tool, e)) from e
        if r.returncode != 0:
            raise BuildError("dpkg-deb failed: %s" % (r.stderr.strip() or r.stdout.strip()))
    return out
