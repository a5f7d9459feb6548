"""Every apt-get and gpg call of the agent, with one explicit environment and the dpkg lock handled.

With --root other than "/", apt and dpkg work on ROOT without a chroot (see shared design "Test
roots"): apt's Dir points into ROOT, dpkg gets --root/--admindir and runs maintainer scripts
chrootless. apt's own configuration is read from ROOT too (APT_CONFIG names a file that sets Dir
before apt reads apt.conf.d), so the host's hooks (DPkg::Post-Invoke and the like) never run
against a test root. apt's locks are off there (Debug::NoLocking) and the agent holds ROOT's
dpkg frontend lock itself instead, telling dpkg so with DPKG_FRONTEND_LOCKED, exactly as apt does.
On the real root, apt takes the locks itself and waits for them (DPkg::Lock::Timeout).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import signal
import subprocess
import time
from typing import Dict, List, Optional

log = logging.getLogger(__name__)

# Arguments every call gets: never ask, keep local config files, and no pty progress noise.
COMMON_OPTIONS = ["-y", "-q"] + [
    arg
    for option in (
        "Dpkg::Options::=--force-confold",
        "Dpkg::Options::=--force-confdef",
        "Dpkg::Use-Pty=0",
        "APT::Color=0",
    )
    for arg in ("-o", option)
]

# Directories apt and dpkg expect; created in test roots only (a real machine has them).
ROOT_DIRS = (
    "etc/apt/sources.list.d",
    "etc/apt/preferences.d",
    "etc/apt/apt.conf.d",
    "etc/apt/trusted.gpg.d",
    "etc/apt/keyrings",
    "var/lib/apt/lists/partial",
    "var/cache/apt/archives/partial",
    "var/log/apt",
    "var/lib/dpkg/info",
    "var/lib/dpkg/updates",
)

# A package argument: name[:arch][=version] or name[:arch]/release. Anything else (an option!)
# is refused before apt sees it.
PACKAGE_ARG_RE = re.compile(
    r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+|/[A-Za-z0-9._-]+)?$"
)
_LOCK_MESSAGE_RE = re.compile(
    r"Could not get lock|Unable to acquire the dpkg frontend lock|dpkg was interrupted"
)


class LockHeld(Exception):
    """Someone else (an admin's apt, unattended-upgrades) holds the dpkg lock."""


class AptResult:
    def __init__(
        self, argv: List[str], exit_code: Optional[int], output: str, error: Optional[str] = None
    ):
        self.argv = argv
        self.exit_code = exit_code
        self.output = output
        self.error = error  # None, "timeout", "dpkg_lock_held", "not_found"

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


def is_real_root(root: str) -> bool:
    return os.path.realpath(root) == "/"


def in_root(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


class DpkgFrontendLock:
    """fcntl lock on ROOT/var/lib/dpkg/lock-frontend, compatible with apt's and dpkg's own."""

    def __init__(self, root: str) -> None:
        self.path = in_root(root, "/var/lib/dpkg/lock-frontend")
        self.fd: Optional[int] = None

    def _try(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        self.fd = fd
        return True

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._try():
            if time.monotonic() >= deadline:
                raise LockHeld(
                    "dpkg lock held: %s is locked by another process (waited %ds)"
                    % (self.path, timeout)
                )
            time.sleep(0.5)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Apt:
    def __init__(
        self,
        root: str = "/",
        state_dir: Optional[str] = None,
        lock_timeout: float = 300.0,
        apt_timeout: float = 3600.0,
    ) -> None:
        self.root = os.path.abspath(root)
        self.real_root = is_real_root(self.root)
        self.state_dir = state_dir
        self.lock_timeout = lock_timeout
        self.apt_timeout = apt_timeout

    # -- environment and arguments ------------------------------------------------------------
    def env(self) -> Dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "APT_LISTCHANGES_FRONTEND": "none",
            "NEEDRESTART_MODE": "l",
        }
        for key in (
            "http_proxy",
            "https_proxy",
            "no_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "NO_PROXY",
        ):
            if key in os.environ:
                env[key] = os.environ[key]
        if not self.real_root:
            env["APT_CONFIG"] = self._root_apt_config()
            env["DPKG_FRONTEND_LOCKED"] = "1"  # we hold ROOT's frontend lock (see module doc)
            env["DPKG_ROOT"] = self.root
        return env

    def _root_apt_config(self) -> str:
        """A one-line apt.conf that moves Dir into ROOT before apt reads any configuration."""
        directory = self.state_dir or in_root(self.root, "/var/lib/apt")
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "apt-root.conf")
        text = 'Dir "%s/";\n' % self.root.replace('"', "")
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return path
        except FileNotFoundError:
            pass
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def root_options(self) -> List[str]:
        if self.real_root:
            return []
        r = self.root
        opts = [
            "Dir=%s" % r,
            "Dir::State::Status=%s/var/lib/dpkg/status" % r,
            "Dir::Etc::SourceList=%s/etc/apt/sources.list" % r,
            "Dir::Etc::SourceParts=%s/etc/apt/sources.list.d" % r,
            "DPkg::Options::=--root=%s" % r,
            "DPkg::Options::=--admindir=%s/var/lib/dpkg" % r,
            "DPkg::Options::=--force-script-chrootless",
            "DPkg::Options::=--force-not-root",
            "Debug::NoLocking=1",
            "APT::Sandbox::User=root",
        ]
        return [x for o in opts for x in ("-o", o)]

    def argv(self, args: List[str], lock_wait: Optional[float] = None) -> List[str]:
        argv = ["apt-get", *COMMON_OPTIONS, *self.root_options()]
        if self.real_root and lock_wait is not None:
            argv += ["-o", "DPkg::Lock::Timeout=%d" % max(1, int(lock_wait))]
        return argv + list(args)

    def prepare_root(self) -> None:
        """Give a test root the directories apt and dpkg need; a real machine has them already."""
        if self.real_root:
            return
        for d in ROOT_DIRS:
            os.makedirs(in_root(self.root, d), exist_ok=True)
        available = in_root(self.root, "/var/lib/dpkg/available")
        if not os.path.exists(available):
            open(available, "a").close()

    # -- running -----------------------------------------------------------------------------
    def run(self, args: List[str], timeout: Optional[float] = None) -> AptResult:
        """Run apt-get ARGS under the dpkg lock; output is stdout+stderr interleaved."""
        self.prepare_root()
        lock = DpkgFrontendLock(self.root)
        started = time.monotonic()
        try:
            lock.acquire(self.lock_timeout)
        except LockHeld as e:
            return AptResult(["apt-get", *list(args)], None, str(e) + "\n", "dpkg_lock_held")
        if self.real_root:
            lock.release()  # only probed: apt-get takes the real locks itself
        try:
            remaining = max(1.0, self.lock_timeout - (time.monotonic() - started))
            argv = self.argv(args, lock_wait=remaining)
            result = self._exec(argv, timeout or self.apt_timeout)
        finally:
            lock.release()
        if result.exit_code not in (0, None) and _LOCK_MESSAGE_RE.search(result.output):
            result.error = "dpkg_lock_held"
            result.output += "dpkg lock held: apt-get could not get the dpkg lock\n"
        return result

    def _exec(self, argv: List[str], timeout: float) -> AptResult:
        log.debug("running %s", " ".join(argv))
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env(),
                # Own session: a timeout kills apt and the dpkg it started as one group, and a
                # Ctrl-C or kill of the agent alone never cuts dpkg off half-way through.
                start_new_session=True,
            )
        except OSError as e:
            return AptResult(argv, None, "cannot run %s: %s\n" % (argv[0], e), "not_found")
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                out, _ = proc.communicate(timeout=30)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                out, _ = proc.communicate()
            text = out.decode("utf-8", "replace") + "\nkilled after %ds\n" % timeout
            return AptResult(argv, proc.returncode, text, "timeout")
        return AptResult(argv, proc.returncode, out.decode("utf-8", "replace"))

    # -- high-level verbs --------------------------------------------------------------------
    def update(self) -> AptResult:
        return self.run(["update"])

    def install(self, packages: List[str], allow_downgrades: bool = False) -> AptResult:
        # A rollback names older versions; apt-get -y refuses those unless told explicitly.
        extra = ["--allow-downgrades"] if allow_downgrades else []
        return self.run(
            ["install", "--no-install-recommends", *extra, *check_package_args(packages)]
        )

    def remove(self, packages: List[str], purge: bool = False) -> AptResult:
        return self.run(["purge" if purge else "remove", *check_package_args(packages)])

    def upgrade(self, packages: Optional[List[str]] = None) -> AptResult:
        if packages:
            return self.run(["install", "--only-upgrade", *check_package_args(packages)])
        return self.run(["upgrade", "--with-new-pkgs"])

    # -- repository configuration ---------------------------------------------------------------
    def write_repo_config(self, sources: str, key: Optional[bytes]) -> str:
        """Write ROOT/etc/apt/sources.list.d/uus.list and the key its signed-by names.

        The server names /etc/apt/keyrings/uus.gpg; the key is stored dearmored there. If gpg is
        missing, the armored key is kept as .asc (apt >= 1.4 reads those) and the line points to
        it. Under a test root the path is moved into ROOT. Returns the written sources text.
        """
        self.prepare_root()
        keyrings: Dict[str, str] = {}
        for path in sorted(set(re.findall(r"signed-by=([^\s\]]+)", sources))):
            if not path.startswith("/"):
                continue
            target = in_root(self.root, path)
            if key is not None:
                target = install_key(key, target)
            elif not os.path.exists(target) and os.path.exists(_with_suffix(target, ".asc")):
                target = _with_suffix(target, ".asc")
            keyrings[path] = target
        text = re.sub(
            r"signed-by=([^\s\]]+)",
            lambda m: "signed-by=" + keyrings.get(m.group(1), m.group(1)),
            sources,
        )
        if not text.endswith("\n"):
            text += "\n"
        path = in_root(self.root, "/etc/apt/sources.list.d/uus.list")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".uus-tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("# Written by uus-agent from the server's answer; changes are overwritten.\n")
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return text


def _with_suffix(path: str, suffix: str) -> str:
    return os.path.splitext(path)[0] + suffix


def check_package_args(packages: List[str]) -> List[str]:
    if not isinstance(packages, list) or not packages:
        raise ValueError("params.packages must be a non-empty list")
    for p in packages:
        if not isinstance(p, str) or not PACKAGE_ARG_RE.match(p):
            raise ValueError("not a package name: %r" % (p,))
    return list(packages)


def install_key(key: bytes, target: str) -> str:
    """Store a repository key at `target` (binary keyring). Returns the path really written."""
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    data = key
    if b"-----BEGIN PGP PUBLIC KEY BLOCK-----" in key:
        try:
            proc = subprocess.run(
                ["gpg", "--batch", "--no-options", "--homedir", "/nonexistent", "--dearmor"],
                input=key,
                capture_output=True,
                timeout=60,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            )
        except (OSError, subprocess.SubprocessError):
            proc = None
        if proc is None or proc.returncode != 0 or not proc.stdout:
            target = _with_suffix(target, ".asc")
        else:
            data = proc.stdout
    tmp = target + ".uus-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
