"""A throwaway OpenLDAP ``slapd`` for tests.

The directory code is tested against a real slapd, never a mock, because the
things that break in production (paging, size limits, TLS validation, the
unauthenticated-bind trap, DN spelling) are exactly what a mock gets wrong.
:class:`SlapdServer` starts slapd in the foreground on free loopback ports in
its own temporary directory with its own ``slapd.conf``, so it needs neither
root nor the system's slapd configuration, and works the same when CI runs as
root (slapd then simply keeps running as root: no ``-u``/``-g``).

Only the standard library is needed here; pytest is imported lazily by the
fixture factory at the bottom.

Quirks handled:

* slapd is not started as a daemon here: ``-d 32768`` (debug level "none")
  keeps it in the foreground, so that we own its pid and can wait for it, and
  still prints its errors (a bad configuration, a busy port) to stderr, which
  goes to ``slapd.log`` in the work directory and into SlapdError messages.
  (``-d 0`` would keep it in the foreground too, but silent.)
* ``/usr/sbin`` is not on a normal user's ``PATH`` on Debian; the binary is
  looked up there explicitly (``UUS_SLAPD`` overrides).
* On Ubuntu, slapd may be confined by the AppArmor profile
  ``/etc/apparmor.d/usr.sbin.slapd``, which forbids reading a ``slapd.conf``
  in a temporary directory. AppArmor profiles attach by executable path, so
  when slapd fails with "Permission denied",
  the helper retries once with a private copy of the binary in its work
  directory (``copy_binary=True`` forces that from the start). Debian itself
  ships no slapd profile, and this was not reproducible here (no AppArmor in
  the kernel), so the retry is triggered by "Permission denied" in slapd's
  output rather than by reading the (root-only) AppArmor profile list.
* ``dbnosync`` makes bulk loads of thousands of entries fast; the data is
  throwaway anyway.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

__all__ = [
    "CORP_LDIF",
    "NOT_LDAP_ANSWERS",
    "NotLdapServer",
    "SlapdError",
    "SlapdServer",
    "find_slapd",
    "make_ca",
    "make_server_certificate",
    "slapd_fixture",
]

#: The realistic test directory shipped with the directory app's tests.
CORP_LDIF = Path(__file__).resolve().parent.parent / "directory" / "tests" / "data" / "corp.ldif"

_SCHEMA_DIRS = ("/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
_MODULE_DIRS = ("/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap")
_SLAPD_CANDIDATES = ("/usr/sbin/slapd", "/usr/libexec/slapd", "/usr/local/libexec/slapd")
_DEFAULT_SCHEMAS = ("core", "cosine", "inetorgperson", "nis")

#: Realistic default access control: authenticated users read everything but
#: password hashes, anonymous clients may only bind. The rootdn bypasses ACLs.
DEFAULT_ACL = """\
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by users read
    by anonymous auth
    by * none
"""

_live_servers: weakref.WeakSet[SlapdServer] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    """Never leave a slapd behind when a test run is interrupted."""
    for server in list(_live_servers):
        server.stop()


class SlapdError(RuntimeError):
    """slapd could not be started, loaded or stopped; the message says why."""


def find_slapd() -> str | None:
    """Path of the slapd binary, or None; ``$UUS_SLAPD`` wins, then PATH, then sbin."""
    env = os.environ.get("UUS_SLAPD")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which("slapd")
    if found:
        return found
    for candidate in _SLAPD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _find_tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if not found:
        raise SlapdError(f"{name} is not installed (Debian package ldap-utils)")
    return found


def _first_dir(candidates, probe: str) -> str | None:
    for d in candidates:
        if os.path.exists(os.path.join(d, probe)):
            return d
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlapdServer:
    """One throwaway slapd: ``with SlapdServer(tls=True) as s: s.load_ldif(path)``.

    Attributes of interest once started: :attr:`url` (``ldap://127.0.0.1:PORT``),
    :attr:`ldaps_url` (with ``tls=True``), :attr:`ca_cert` (PEM path of the
    throwaway CA that signed the server certificate), :attr:`root_dn`,
    :attr:`root_pw`, :attr:`suffix`, :attr:`workdir`, :attr:`pid`.
    """

    def __init__(
        self,
        *,
        suffix: str = "dc=corp,dc=test",
        root_dn: str | None = None,
        root_pw: str = "admin-secret",
        tls: bool = False,
        memberof: bool = False,
        acl: str | None = DEFAULT_ACL,
        sizelimit: str | None = None,
        schemas=_DEFAULT_SCHEMAS,
        extra_config: str = "",
        extra_database_config: str = "",
        tls_names=("IP:127.0.0.1", "DNS:localhost"),
        self_signed: bool = False,
        config_template: str | os.PathLike | None = None,
        copy_binary: bool = False,
        ldif: str | os.PathLike | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        """Describe the server; nothing runs until :meth:`start`.

        ``tls_names`` are the server certificate's subjectAltNames (change them to test host
        name checks); ``self_signed`` gives the server a self-signed certificate, made with
        ``openssl req -x509`` as many admins do, instead of one from a throwaway CA (``ca_cert``
        is then the server certificate itself); ``extra_config`` goes into the global section and
        ``extra_database_config`` into the database section (``limits ...``);
        ``schemas`` are names of the system's schema files or paths of others;
        ``memberof`` loads the memberOf overlay (group membership visible on
        users, like Active Directory); ``sizelimit`` is the raw value of the
        ``sizelimit`` directive (e.g. ``"size.soft=500 size.hard=500
        size.prtotal=unlimited"``); ``config_template`` replaces the generated
        configuration with a file whose ``@DIR@`` is substituted with the work
        directory (the acceptance check's ``slapd.conf.in`` works as is);
        ``ldif`` is loaded right after the first start.
        """
        self.suffix = suffix
        self.root_dn = root_dn or f"cn=admin,{suffix}"
        self.root_pw = root_pw
        self.tls = tls
        self.memberof = memberof
        self.acl = acl
        self.sizelimit = sizelimit
        self.schemas = tuple(schemas)
        self.extra_config = extra_config
        self.extra_database_config = extra_database_config
        self.tls_names = tuple(tls_names)
        self.self_signed = self_signed
        self.config_template = Path(config_template) if config_template else None
        self.copy_binary = copy_binary
        self.initial_ldif = ldif
        self.start_timeout = start_timeout
        if self.config_template and tls:
            raise ValueError("tls=True needs the generated configuration, not config_template")

        self.workdir: Path | None = None
        self.port: int | None = None
        self.tls_port: int | None = None
        self.ca_cert: Path | None = None
        self.ca_key: Path | None = None
        self.server_cert: Path | None = None
        self.server_key: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._binary: str | None = None
        self._log_file = None

    # ----------------------------------------------------------------- props
    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        if not self.tls_port:
            raise SlapdError("this slapd was started without tls=True")
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self._dir / "slapd.log"

    @property
    def _dir(self) -> Path:
        if self.workdir is None:
            raise SlapdError("slapd has not been started")
        return self.workdir

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> SlapdServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> SlapdServer:
        """Prepare the work directory and start slapd; returns self."""
        if self.running:
            return self
        binary = find_slapd()
        if binary is None:
            raise SlapdError("slapd is not installed (Debian packages slapd and ldap-utils)")
        self.workdir = Path(tempfile.mkdtemp(prefix="uus-slapd-"))
        # slapd, possibly running as another user via a copied binary, needs to traverse it.
        os.chmod(self.workdir, 0o755)
        (self.workdir / "db").mkdir()
        self._binary = self._copy_binary(binary) if self.copy_binary else binary
        if self.tls:
            self._make_certificates()
        _live_servers.add(self)
        try:
            self._launch()
            if self.initial_ldif is not None:
                self.load_ldif(self.initial_ldif)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, keep_ports: bool = False) -> None:
        last_error = ""
        for _attempt in range(5):
            if not keep_ports or self.port is None:
                self.port = _free_port()
                self.tls_port = _free_port() if self.tls else None
            self._write_config()
            urls = self.url + "/" + (f" {self.ldaps_url}/" if self.tls else "")
            self._log_file = open(self.log_path, "ab")
            self._proc = subprocess.Popen(
                [self._binary, "-d", "32768", "-f", str(self._dir / "slapd.conf"), "-h", urls],
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                start_new_session=True,  # a Ctrl-C in the test run must not hit slapd first
            )
            if self._wait_ready():
                return
            last_error = self._log_tail()
            self._reap()
            if "Permission denied" in last_error and self._binary == find_slapd():
                # AppArmor attaches by path: a private copy of the binary is not confined.
                self._binary = self._copy_binary(self._binary)
                continue
            if "Address already in use" in last_error and not keep_ports:
                continue  # lost the free-port race; pick new ports
            break
        raise SlapdError(f"slapd did not start: {last_error or 'no output'}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        ports = [p for p in (self.port, self.tls_port) if p]
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if all(self._port_open(p) for p in ports):
                return True
            time.sleep(0.02)
        return False

    @staticmethod
    def _port_open(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def _log_tail(self, lines: int = 8) -> str:
        """slapd's last messages, without timestamps and banners, on one line."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        noise = ("@(#) $OpenLDAP", "OpenLDAP Maintainers", "slapd stopped.", "connections_destroy:", "slapd starting")
        kept = []
        for line in text.splitlines():
            line = re.sub(r"^[0-9a-f]+\.[0-9a-f]+ 0x[0-9a-f]+ ", "", line).strip()
            if line and not any(n in line for n in noise):
                kept.append(line)
        return "; ".join(kept[-lines:])

    def _reap(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # slapd shuts down cleanly and closes the mdb
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        """Stop slapd (SIGTERM by pid, then SIGKILL) and remove the work directory."""
        self._reap()
        _live_servers.discard(self)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def restart(self) -> None:
        """Stop and start again on the same ports, keeping the data."""
        self._reap()
        self._launch(keep_ports=True)

    def reset(self, ldif: str | os.PathLike | None = None) -> None:
        """Wipe the database and restart on the same ports, then load ``ldif``."""
        self._reap()
        db = self._dir / "db"
        shutil.rmtree(db)
        db.mkdir()
        self._launch(keep_ports=True)
        if ldif is not None:
            self.load_ldif(ldif)

    # ---------------------------------------------------------------- config
    def _copy_binary(self, binary: str) -> str:
        target = self._dir / "slapd"
        shutil.copy2(binary, target)
        return str(target)

    def _write_config(self) -> None:
        d = self._dir
        if self.config_template is not None:
            text = self.config_template.read_text().replace("@DIR@", str(d))
            (d / "slapd.conf").write_text(text)
            return
        schema_dir = _first_dir(_SCHEMA_DIRS, "core.schema")
        if schema_dir is None:
            raise SlapdError(f"no OpenLDAP schema directory found (looked in {', '.join(_SCHEMA_DIRS)})")
        # a schema is a name in the system's schema directory, or a path (a test's own schema file)
        lines = [f"include {name if '/' in str(name) else f'{schema_dir}/{name}.schema'}" for name in self.schemas]
        lines += [f"pidfile {d}/slapd.pid", f"argsfile {d}/slapd.args"]
        module_dir = _first_dir(_MODULE_DIRS, "back_mdb.la") or _first_dir(_MODULE_DIRS, "back_mdb.so")
        if module_dir:  # otherwise the back-end is built into slapd
            lines += [f"modulepath {module_dir}", "moduleload back_mdb"]
            if self.memberof:
                lines.append("moduleload memberof")
        if self.tls:
            lines += [
                f"TLSCACertificateFile {self.ca_cert}",
                f"TLSCertificateFile {self.server_cert}",
                f"TLSCertificateKeyFile {self.server_key}",
            ]
        if self.sizelimit:
            lines.append(f"sizelimit {self.sizelimit}")
        if self.extra_config:
            lines.append(self.extra_config.strip())
        lines += [
            "database mdb",
            "maxsize 104857600",
            "dbnosync",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.root_dn}"',
            f"rootpw {self.root_pw}",
            f"directory {d}/db",
            "index objectClass eq",
            "index uid,cn,member,uniqueMember eq",
        ]
        if self.extra_database_config:
            lines.append(self.extra_database_config.strip())
        if self.memberof:
            lines.append("overlay memberof")
        if self.acl:
            lines.append(self.acl.strip())
        (d / "slapd.conf").write_text("\n".join(lines) + "\n")

    def _openssl(self, *args: str) -> None:
        openssl = shutil.which("openssl")
        if not openssl:
            raise SlapdError("openssl is not installed; tls=True needs it")
        r = subprocess.run([openssl, *args], cwd=self._dir, capture_output=True, text=True)
        if r.returncode:
            raise SlapdError(f"openssl {args[0]} failed: {r.stderr.strip()}")

    def _make_certificates(self) -> None:
        self.server_key = self._dir / "server.key"
        self.server_cert = self._dir / "server.crt"
        if self.self_signed:
            self._openssl(
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(self.server_key),
                "-out",
                str(self.server_cert),
                "-subj",
                "/CN=UUS self-signed test slapd",
                "-addext",
                f"subjectAltName = {', '.join(self.tls_names)}",
            )
            self.ca_cert = self.server_cert  # what a client must trust: the certificate itself
            for path in (self.server_key, self.server_cert):
                os.chmod(path, 0o644)
            return
        self.ca_cert, self.ca_key = make_ca(self._dir, "ca", "UUS throwaway test CA")
        self.server_cert, self.server_key = make_server_certificate(
            self._dir, "server", self.ca_cert, self.ca_key, self.tls_names, common_name="UUS test slapd"
        )
        # slapd may run as another user than the one who made the files (copied binary, root).
        for path in (self.server_key, self.server_cert, self.ca_cert):
            os.chmod(path, 0o644)

    def make_other_ca(self, name: str = "other-ca") -> Path:
        """A second, unrelated CA certificate: validating the server with it must fail."""
        cert, _key = make_ca(self._dir, name, "Unrelated test CA")
        return cert

    # ------------------------------------------------------------------ data
    def _ldap_tool(self, tool: str, source: str | os.PathLike, extra=()) -> str:
        if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and "\n" in source):
            path = Path(source)
        else:
            path = self._dir / f"input-{time.monotonic_ns()}.ldif"
            path.write_text(source)
        pwfile = self._dir / "rootpw"
        pwfile.write_text(self.root_pw)  # -y reads the file verbatim: no trailing newline
        os.chmod(pwfile, 0o600)
        env = dict(os.environ, LDAPNOINIT="1")  # ignore ~/.ldaprc and /etc/ldap/ldap.conf
        r = subprocess.run(
            [_find_tool(tool), "-x", "-H", self.url, "-D", self.root_dn, "-y", str(pwfile), "-f", str(path), *extra],
            capture_output=True,
            text=True,
            env=env,
        )
        if r.returncode:
            raise SlapdError(f"{tool} -f {path} failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        return r.stdout

    def load_ldif(self, source: str | os.PathLike) -> str:
        """Add the entries of an LDIF file (a path, or LDIF text containing newlines) with ldapadd."""
        return self._ldap_tool("ldapadd", source)

    def modify_ldif(self, source: str | os.PathLike) -> str:
        """Apply an LDIF with ``changetype:`` records (modify, delete, modrdn) with ldapmodify."""
        return self._ldap_tool("ldapmodify", source)

    def __repr__(self) -> str:
        state = f"pid {self.pid} on {self.url}" if self.running else "stopped"
        return f"<SlapdServer {self.suffix} {state}>"


def make_ca(directory: str | os.PathLike, stem: str, common_name: str) -> tuple[Path, Path]:
    """Make a self-signed CA (``stem.crt``, ``stem.key``) in ``directory`` with the openssl CLI."""
    directory = Path(directory)
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    openssl = shutil.which("openssl")
    if not openssl:
        raise SlapdError("openssl is not installed; TLS tests need it")
    r = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-sha256",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode:
        raise SlapdError(f"openssl req -x509 failed: {r.stderr.strip()}")
    return cert, key


def make_server_certificate(
    directory: str | os.PathLike,
    stem: str,
    ca_cert: Path,
    ca_key: Path,
    names,
    *,
    common_name: str = "UUS test server",
) -> tuple[Path, Path]:
    """A TLS server certificate (``stem.crt``, ``stem.key``) signed by the CA, valid for ``names``
    (subjectAltName entries such as ``DNS:localhost``, ``IP:127.0.0.1``), made with the openssl CLI."""
    directory = Path(directory)
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    csr, ext = directory / f"{stem}.csr", directory / f"{stem}.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        f"subjectAltName = {', '.join(names)}\n"
    )
    openssl = shutil.which("openssl")
    if not openssl:
        raise SlapdError("openssl is not installed; TLS tests need it")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    signing = ["-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2", "-sha256"]
    steps = [
        ["req", "-new", *new_key, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name}"],
        ["x509", "-req", "-in", str(csr), *signing, "-extfile", str(ext), "-out", str(cert)],
    ]
    for args in steps:
        r = subprocess.run([openssl, *args], cwd=directory, capture_output=True, text=True)
        if r.returncode:
            raise SlapdError(f"openssl {args[0]} failed: {r.stderr.strip()}")
    return cert, key


# --------------------------------------------------------------------- pytest
#: Answers of servers that are not (well-behaved) LDAP servers, for "garbage answers" tests.
NOT_LDAP_ANSWERS = {
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "ssh": b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n",
    # a BER SEQUENCE that claims to be an LDAP message but holds an empty ENUMERATED: undecodable
    "truncated-ldap": b"\x30\x05\x02\x01\x01\x0a\x00",
}


class NotLdapServer:
    """A TCP server on a free loopback port that reads a client's first bytes, answers ``answer``
    and closes: another service on the directory's port, or a broken proxy. Used as a context manager;
    ``url`` is its ldap:// URL."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self.url = f"ldap://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name=f"not-ldap-{self.port}", daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed: stop serving
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def __enter__(self) -> NotLdapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        except OSError:
            pass
        self._listener.close()
        self._thread.join(timeout=5)


def slapd_fixture(*, name: str = "slapd_server", scope: str = "session", ldif=CORP_LDIF, **server_kwargs):
    """Build a pytest fixture yielding a started :class:`SlapdServer` loaded with ``ldif``.

    It skips (with the reason) only when the slapd binary is absent; any other
    failure to start is an error, so that a broken setup is never silently
    skipped. Use a narrower scope, or a fixture of your own, for tests that
    modify the directory. Example in a test module::

        paging_ldap = slapd_fixture(name="paging_ldap", scope="module", ldif=None)
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _slapd():
        if find_slapd() is None:
            pytest.skip(
                "slapd is not installed (Debian packages slapd and ldap-utils); "
                "the directory tests need a real OpenLDAP server"
            )
        with SlapdServer(ldif=ldif, **server_kwargs) as server:
            yield server

    return _slapd


if importlib.util.find_spec("pytest") is not None:  # production installs have no pytest
    #: Session-scoped slapd with TLS (ldaps and StartTLS), the memberOf overlay and
    #: ``corp.ldif`` loaded. Register it by importing it into a conftest
    #: (``from uus.testing.slapd import slapd_server``). Treat it as read-only: the
    #: whole session shares it.
    slapd_server = slapd_fixture(tls=True, memberof=True)
    __all__.append("slapd_server")
