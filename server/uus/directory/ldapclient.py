"""Reading an organisation's LDAP directory (OpenLDAP or Active Directory) with ldap3.

This module is deliberately free of Django: it turns a :class:`DirectoryConfig`
into plain data (:class:`DirectorySnapshot`, :class:`DirectoryUser`) so that the
sync and login code above it can be tested against a real slapd and reasoned
about without a database.

Choices worth knowing:

* TLS always validates the server certificate (``CERT_REQUIRED``) *and* its
  name, with the standard library's own checks (which understand IP address
  SANs, unlike ldap3's fallback matcher on Python >= 3.12).
* Searches are paged (RFC 2696), because AD returns at most 1,000 entries
  per page and OpenLDAP's size limit (500 unless configured) cuts unpaged
  searches. OpenLDAP also caps the *total* of a paged search at the hard size
  limit unless the service account gets ``limits ... size.prtotal=unlimited``;
  ldap3 ends such a search quietly, so :func:`read_directory` turns it into
  an error rather than a silently short directory.
* Member DNs are written in any spelling (``UID=Bob, OU=people``); slapd
  lower-cases attribute types and drops spaces but keeps value case, AD keeps
  everything as typed.
* DNs are normalised once (:func:`normalize_dn`) and compared by
  :func:`dn_key` (case-insensitive, spacing-insensitive, escape-insensitive).
* An entry that cannot be used (no host name, no login) becomes a
  :class:`DirectoryWarning` in the snapshot; one bad entry never stops a sync.
* The bind password never reaches a message, a log record or a ``repr``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import ssl
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars

__all__ = [
    "DirectoryBaseDNError",
    "DirectoryBindError",
    "DirectoryComputer",
    "DirectoryConfig",
    "DirectoryConfigError",
    "DirectoryError",
    "DirectoryGroup",
    "DirectoryOU",
    "DirectoryProtocolError",
    "DirectorySearchError",
    "DirectorySnapshot",
    "DirectoryTLSError",
    "DirectoryUnreachableError",
    "DirectoryUser",
    "DirectoryWarning",
    "authenticate",
    "connect",
    "dn_caches_clear",
    "dn_key",
    "is_dn_within",
    "normalize_dn",
    "ou_ancestors",
    "parent_dn",
    "rdn_value",
    "read_directory",
    "test_connection",
]

log = logging.getLogger("uus.directory")

DEFAULT_OU_FILTER = "(objectClass=organizationalUnit)"
DEFAULT_COMPUTER_FILTER = "(|(objectClass=computer)(objectClass=device))"
# AD computers are also objectClass=user, hence the exclusion.
DEFAULT_USER_FILTER = "(|(objectClass=inetOrgPerson)(&(objectClass=user)(!(objectClass=computer))))"
DEFAULT_GROUP_FILTER = "(|(objectClass=groupOfNames)(objectClass=group)(objectClass=groupOfUniqueNames))"
#: dNSHostName is AD's; associatedDomain is the stock OpenLDAP (cosine) DNS name; cn is the fallback.
DEFAULT_HOSTNAME_ATTRIBUTES = ("dNSHostName", "associatedDomain", "cn")
DEFAULT_LOGIN_ATTRIBUTES = ("uid", "sAMAccountName")
DEFAULT_MEMBER_ATTRIBUTES = ("member", "uniqueMember")

_NESTED_GROUP_DEPTH = 8


# =============================================================================
# Errors
# =============================================================================
class DirectoryError(Exception):
    """Anything that went wrong talking to the directory; ``str()`` is meant for the admin."""


class DirectoryConfigError(DirectoryError):
    """The configuration itself is unusable (bad URL, filter, missing password...)."""


class DirectoryUnreachableError(DirectoryError):
    """No LDAP server answered: refused, timed out, unknown host."""


class DirectoryProtocolError(DirectoryError):
    """Something answered, but not in LDAP (another service on the port, a broken proxy)."""


class DirectoryTLSError(DirectoryError):
    """TLS could not be set up: certificate not trusted, wrong name, StartTLS refused."""


class DirectoryBindError(DirectoryError):
    """The service account's bind was refused."""


class DirectoryBaseDNError(DirectoryError):
    """The base DN is malformed or names no entry."""


class DirectorySearchError(DirectoryError):
    """A search failed for another reason (size limit, access, filter rejected by the server)."""


# =============================================================================
# Configuration and results
# =============================================================================
@dataclass
class DirectoryConfig:
    """How to reach and read one directory. Defaults fit OpenLDAP and Active Directory."""

    url: str
    base_dn: str
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)  # never in a repr
    start_tls: bool = False
    ca_cert_path: str | None = None  # PEM file; None means the system's trust store
    ca_cert_data: str | None = field(default=None, repr=False)  # PEM text, e.g. stored in the database
    ou_filter: str = DEFAULT_OU_FILTER
    computer_filter: str = DEFAULT_COMPUTER_FILTER
    hostname_attributes: tuple[str, ...] | list[str] = DEFAULT_HOSTNAME_ATTRIBUTES
    user_filter: str = DEFAULT_USER_FILTER
    login_attributes: tuple[str, ...] | list[str] = DEFAULT_LOGIN_ATTRIBUTES
    group_filter: str = DEFAULT_GROUP_FILTER
    member_attributes: tuple[str, ...] | list[str] = DEFAULT_MEMBER_ATTRIBUTES
    page_size: int = 500
    timeout: float = 10.0  # seconds, for connecting and for each answer


@dataclass(frozen=True)
class DirectoryWarning:
    """An entry that was skipped or is suspicious, and why."""

    dn: str
    reason: str

    def __str__(self) -> str:
        return f"{self.dn}: {self.reason}"


@dataclass(frozen=True)
class DirectoryOU:
    """An organizational unit; ``parent_dn`` is the nearest OU above it that was read, or None."""

    dn: str
    name: str
    parent_dn: str | None


@dataclass(frozen=True)
class DirectoryComputer:
    """A machine object; ``hostname`` is the lower-case short name UUS matches machines by."""

    dn: str
    hostname: str
    fqdn: str | None
    ou_dn: str  # the entry directly above it (an OU, or a container such as AD's CN=Computers)


@dataclass(frozen=True)
class DirectoryGroup:
    """A group with the DNs of its direct members (people, computers or other groups)."""

    dn: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class DirectoryUser:
    """A person; ``groups`` are the DNs of every group it is in, nested ones included."""

    dn: str
    login: str
    display_name: str
    mail: str | None
    groups: tuple[str, ...] = ()

    @property
    def group_names(self) -> tuple[str, ...]:
        """The first RDN value of each group DN (``cn=uus-admins,...`` -> ``uus-admins``)."""
        return tuple(rdn_value(g) for g in self.groups)


@dataclass
class DirectorySnapshot:
    """Everything one sync needs, read in one go."""

    base_dn: str
    ous: list[DirectoryOU] = field(default_factory=list)
    computers: list[DirectoryComputer] = field(default_factory=list)
    groups: list[DirectoryGroup] = field(default_factory=list)
    users: list[DirectoryUser] = field(default_factory=list)
    warnings: list[DirectoryWarning] = field(default_factory=list)

    def computer_ous(self, computer: DirectoryComputer) -> list[str]:
        """DNs of every OU read that contains the computer, nearest first."""
        wanted = {dn_key(o.dn) for o in self.ous}
        return _ancestors(_split_dn(computer.dn), _split_dn(self.base_dn), wanted)

    def ou_members(self) -> dict[str, list[str]]:
        """OU DN -> sorted host names of the computers anywhere below it (every OU read is a key)."""
        members: dict[str, set[str]] = {ou.dn: set() for ou in self.ous}
        by_key = {dn_key(ou.dn): ou.dn for ou in self.ous}
        base = _split_dn(self.base_dn)
        for computer in self.computers:
            for ancestor in _ancestors(_split_dn(computer.dn), base, set(by_key)):
                members[by_key[dn_key(ancestor)]].add(computer.hostname)
        return {dn: sorted(hosts) for dn, hosts in members.items()}

    def group_members(self, group: DirectoryGroup) -> set[str]:
        """Keys (:func:`dn_key`) of the non-group members of a group, nested groups expanded."""
        groups = {dn_key(g.dn): g for g in self.groups}
        seen: set[str] = set()
        result: set[str] = set()
        stack = [group]
        while stack:
            g = stack.pop()
            if dn_key(g.dn) in seen:
                continue
            seen.add(dn_key(g.dn))
            for m in g.members:
                k = dn_key(m)
                if k in groups:
                    stack.append(groups[k])
                else:
                    result.add(k)
        return result


# =============================================================================
# DNs
# =============================================================================
_DN_SPECIALS = set(',+"\\<>;')
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")


_NEEDS_ESCAPE = re.compile(r'[,+"\\<>;\x00]|^[ #]| $')


def _escape_value(value: str) -> str:
    """RFC 4514 escaping, always the same way, so that equal values have equal spellings."""
    if not _NEEDS_ESCAPE.search(value):  # nearly every value: nothing to escape
        return value
    out = []
    for i, c in enumerate(value):
        if c in _DN_SPECIALS or (i == 0 and c in " #") or (i == len(value) - 1 and c == " "):
            out.append("\\" + c)
        elif c == "\x00":
            out.append("\\00")
        else:
            out.append(c)
    return "".join(out)


_ATTR_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")


# A sync handles each DN several times (normalise, key, parent, OUs above it), and OU DNs once per
# computer below them: parsing and keys are cached. The results are tuples, so nobody can change a
# cached value; the caches are bounded, for the long-running web and worker processes.
_DN_CACHE = 1 << 17


def _split_dn(dn: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    """RDNs, each a tuple of (lower-case type, unescaped value); raises DirectoryConfigError.

    RFC 4514, leniently: spaces around ``=``, ``,`` and ``+`` are ignored (RFC 1779 style, as
    written by people and by AD tools) and ``;`` separates RDNs like ``,``.
    """
    if not isinstance(dn, str):
        raise DirectoryConfigError("an empty DN is not a valid DN")
    return _split_dn_cached(dn)


@functools.lru_cache(maxsize=_DN_CACHE)
def _split_dn_cached(dn: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    if not dn.strip():
        raise DirectoryConfigError("an empty DN is not a valid DN")

    def bad(why: str) -> DirectoryConfigError:
        return DirectoryConfigError(f"{dn!r} is not a valid DN ({why})")

    rdns: list[list[tuple[str, str]]] = [[]]
    i, n = 0, len(dn)
    while True:
        eq = dn.find("=", i)
        if eq < 0:
            raise bad("an attribute has no '='")
        attr = dn[i:eq].strip()
        if not _ATTR_TYPE.fullmatch(attr):
            raise bad(f"{attr!r} is not an attribute type")
        i = eq + 1
        while i < n and dn[i] == " ":
            i += 1
        buf = bytearray()
        significant = 0  # length of buf without unescaped trailing spaces
        while i < n and dn[i] not in ",+;":
            c = dn[i]
            if c == "\\":
                if _HEX2.fullmatch(dn[i + 1 : i + 3]):
                    buf.append(int(dn[i + 1 : i + 3], 16))
                    i += 3
                elif i + 1 < n:
                    buf += dn[i + 1].encode()
                    i += 2
                else:
                    raise bad("it ends with a lone backslash")
                significant = len(buf)
            else:
                buf += c.encode()
                i += 1
                if c != " ":
                    significant = len(buf)
        rdns[-1].append((attr.lower(), bytes(buf[:significant]).decode("utf-8", errors="replace")))
        if i >= n:
            break
        if dn[i] in ",;":
            rdns.append([])
        i += 1
        if not dn[i:].strip():
            raise bad("it ends with a separator")
    return tuple(tuple(rdn) for rdn in rdns)


def dn_caches_clear() -> None:
    """Drop the parsed DNs (a sync of 50,000 computers caches ~100 MB of them); called after each sync."""
    for cached in (_split_dn_cached, _join, _key):
        cached.cache_clear()


@functools.lru_cache(maxsize=_DN_CACHE)
def _join(rdns) -> str:
    return ",".join("+".join(f"{a}={_escape_value(v)}" for a, v in rdn) for rdn in rdns)


@functools.lru_cache(maxsize=_DN_CACHE)
def _key(rdns) -> str:
    return ",".join("+".join(sorted(f"{a}={_escape_value(v)}".casefold() for a, v in rdn)) for rdn in rdns)


def normalize_dn(dn: str) -> str:
    """One spelling per DN: lower-case attribute types, no spaces around separators, canonical
    escapes; values keep their case (``UID=Bob, OU=People`` -> ``uid=Bob,ou=People``)."""
    return _join(_split_dn(dn))


def dn_key(dn: str) -> str:
    """Comparison key: two DNs name the same entry iff their keys are equal (case-insensitive)."""
    return _key(_split_dn(dn))


def parent_dn(dn: str) -> str | None:
    """The normalised DN directly above ``dn``, or None for a single-RDN DN."""
    rdns = _split_dn(dn)
    return _join(rdns[1:]) if len(rdns) > 1 else None


def rdn_value(dn: str) -> str:
    """The value of the first attribute of the first RDN (``cn=web1,ou=x`` -> ``web1``)."""
    return _split_dn(dn)[0][0][1]


def is_dn_within(dn: str, base_dn: str) -> bool:
    """True when ``dn`` is ``base_dn`` or below it."""
    rdns, base = _split_dn(dn), _split_dn(base_dn)
    return len(rdns) >= len(base) and _key(rdns[len(rdns) - len(base) :]) == _key(base)


def _ancestors(rdns, base, wanted: set[str] | None) -> list[str]:
    out = []
    base_key = _key(base) if base is not None else None
    for i in range(1, len(rdns)):
        above = rdns[i:]
        if base is not None and (len(above) < len(base) or _key(above[len(above) - len(base) :]) != base_key):
            break
        if wanted is None:
            if above[0][0][0] == "ou":
                out.append(_join(above))
        elif _key(above) in wanted:
            out.append(_join(above))
    return out


def ou_ancestors(dn: str, base_dn: str | None = None, ou_dns=None) -> list[str]:
    """Every OU DN above ``dn`` (nearest first), so that a machine in ``ou=Berlin,ou=Germany``
    is in both. Without ``ou_dns`` an ancestor counts as an OU when its RDN is ``ou=``; with it,
    when it is one of those DNs (any spelling). With ``base_dn``, only ancestors at or below it."""
    wanted = None if ou_dns is None else {dn_key(o) for o in ou_dns}
    return _ancestors(_split_dn(dn), _split_dn(base_dn) if base_dn else None, wanted)


# =============================================================================
# Host names
# =============================================================================
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _host_name(value: str) -> tuple[str, str | None] | None:
    """(short name, fqdn or None) from a DNS name or a bare name; None if it is not a host name."""
    name = value.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        return None
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    return labels[0], (name if len(labels) > 1 else None)


# =============================================================================
# Connecting
# =============================================================================
class _SafeConnection(ldap3.Connection):
    """ldap3's Connection repr() shows the password; this one never does (tracebacks, debug pages)."""

    def __repr__(self) -> str:
        return self.repr_with_sensitive_data_stripped()


class _VerifyingTls(ldap3.Tls):
    """TLS with the standard library's full validation: chain and host name (IPs included)."""

    def __init__(self, context: ssl.SSLContext):
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.context = context

    def wrap_socket(self, connection, do_handshake=False):
        # Always hand-shake at once, so that a bad certificate is reported as such.
        connection.socket = self.context.wrap_socket(
            connection.socket, server_hostname=connection.server.host, do_handshake_on_connect=True
        )


def _tls_context(cfg: DirectoryConfig) -> ssl.SSLContext:
    """A client context that requires a valid certificate for the host; a CA that cannot be
    loaded is a configuration error, found before any connection is made."""
    try:
        context = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH, cafile=cfg.ca_cert_path or None, cadata=cfg.ca_cert_data or None
        )
    except (OSError, ssl.SSLError, ValueError) as e:
        which = f"file {cfg.ca_cert_path}" if cfg.ca_cert_path else "data"
        raise DirectoryConfigError(
            f"the CA certificate {which} cannot be used: {getattr(e, 'strerror', None) or e}"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _parse_url(cfg: DirectoryConfig) -> tuple[str, int, bool]:
    try:
        parts = urlsplit(cfg.url.strip())
        port = parts.port
    except ValueError as e:
        raise DirectoryConfigError(f"invalid directory URL {cfg.url!r}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps"):
        raise DirectoryConfigError(f"invalid directory URL {cfg.url!r}: the scheme must be ldap:// or ldaps://")
    if not parts.hostname:
        raise DirectoryConfigError(f"invalid directory URL {cfg.url!r}: no host")
    use_ssl = scheme == "ldaps"
    if use_ssl and cfg.start_tls:
        raise DirectoryConfigError("StartTLS cannot be combined with ldaps:// (which is TLS already)")
    return parts.hostname, port or (636 if use_ssl else 389), use_ssl


def _scrub(text: str, cfg: DirectoryConfig) -> str:
    """Belt and braces: whatever the libraries put in a message, the password goes."""
    if cfg.bind_password and len(cfg.bind_password) >= 3:  # shorter ones would garble every message
        text = text.replace(cfg.bind_password, "********")
    return text


_SSL_REASON = re.compile(r"certificate verify failed[^()\]\n]*|\[SSL: [A-Z_]+\] ([^(\n]*)")


def _tls_reason(text: str) -> str:
    """The useful part of an ssl error as ldap3 wraps it (often repr()-escaped, twice)."""
    text = text.replace("\\'", "'")
    m = _SSL_REASON.search(text)
    if not m:
        return text.split(": ", 1)[-1].strip()
    reason = (m.group(1) if m.group(1) is not None else m.group(0)).strip().rstrip(".")
    if "EOF occurred" in reason or "wrong version number" in reason or "record layer failure" in reason:
        reason += " (the server did not answer in TLS: is this an ldap:// port?)"
    return reason


def _network_reason(text: str, cfg: DirectoryConfig) -> str:
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "connection timed out"
    if (
        "invalid server address" in low
        or "name or service not known" in low
        or "getaddrinfo" in low
        or "nodename nor servname" in low
        or "no address associated" in low
        or "temporary failure in name resolution" in low
    ):
        return "host name not found"
    if "unreachable" in low:
        return "network unreachable"
    if "reset by peer" in low or "session terminated" in low or "connection closed" in low:
        hint = " (if this port speaks TLS, use ldaps://)" if not cfg.url.strip().lower().startswith("ldaps") else ""
        return "connection closed by the server" + hint
    return text


def _is_tls_problem(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in ("ssl", "certificate", "tls", "handshake"))


def _translate(e: Exception, cfg: DirectoryConfig, action: str) -> DirectoryError:
    """Turn an ldap3 exception into a DirectoryError with a message an admin can act on."""
    url = cfg.url.strip()
    if isinstance(e, DirectoryError):
        return e
    if isinstance(e, lx.LDAPStartTLSError):
        text = str(e)
        if _is_tls_problem(text.split(" - ", 1)[-1]) or _SSL_REASON.search(text):
            return DirectoryTLSError(_scrub(f"TLS handshake failed: {_tls_reason(text)} ({url}, StartTLS)", cfg))
        return DirectoryTLSError(_scrub(f"StartTLS with {url} failed: {text}", cfg))
    if isinstance(e, lx.LDAPCertificateError):
        return DirectoryTLSError(_scrub(f"TLS handshake failed: {e} ({url})", cfg))
    if isinstance(
        e,
        (
            lx.LDAPSocketOpenError,
            lx.LDAPSocketReceiveError,
            lx.LDAPSocketSendError,
            lx.LDAPSessionTerminatedByServerError,
            lx.LDAPCommunicationError,
        ),
    ):
        texts = [str(e)]
        if len(e.args) > 1 and isinstance(e.args[1], list):  # one error per candidate address
            texts = [str(item[0]) for item in e.args[1]] or texts
        for text in texts:
            if _is_tls_problem(text):
                return DirectoryTLSError(_scrub(f"TLS handshake failed: {_tls_reason(text)} ({url})", cfg))
        return DirectoryUnreachableError(_scrub(f"cannot reach {url}: {_network_reason(texts[0], cfg)}", cfg))
    if isinstance(e, lx.LDAPInvalidCredentialsResult):
        return DirectoryBindError(_scrub(f"bind as {cfg.bind_dn} refused: invalid credentials", cfg))
    if isinstance(e, lx.LDAPNoSuchObjectResult):
        return DirectoryBaseDNError(_scrub(f"base DN {cfg.base_dn} does not exist on {url}", cfg))
    if isinstance(e, lx.LDAPInvalidDNSyntaxResult):
        return DirectoryBaseDNError(_scrub(f"base DN {cfg.base_dn!r} is not a valid DN", cfg))
    if isinstance(e, lx.LDAPTimeLimitExceededResult):
        return DirectorySearchError(_scrub(f"{action}: the server's time limit was reached", cfg))
    if isinstance(e, lx.LDAPSizeLimitExceededResult):
        return DirectorySearchError(
            _scrub(
                f"{action}: the server's size limit was reached; allow paged searches beyond it for "
                f"{cfg.bind_dn or 'the anonymous user'} (OpenLDAP: limits ... size.prtotal=unlimited)",
                cfg,
            )
        )
    if isinstance(e, lx.LDAPInsufficientAccessRightsResult):
        return DirectorySearchError(_scrub(f"{action}: access denied to {cfg.bind_dn or 'anonymous'}", cfg))
    if isinstance(e, lx.LDAPInvalidFilterError):
        return DirectoryConfigError(_scrub(f"{action}: invalid filter: {e}", cfg))
    if isinstance(e, lx.LDAPOperationResult):
        detail = e.description or ""
        if e.message:
            detail += f" ({e.message})"
        return DirectorySearchError(_scrub(f"{action}: {detail or e}", cfg))
    if isinstance(e, (IndexError, KeyError, ValueError)) or type(e).__module__.startswith("pyasn1"):
        # ldap3 decodes whatever bytes arrive; bytes that are not LDAP end up as decoding errors
        return DirectoryProtocolError(
            _scrub(
                f"{action}: the answer is not LDAP ({type(e).__name__}: {e}); "
                f"is {url} the directory's address and port?",
                cfg,
            )
        )
    return DirectoryError(_scrub(f"{action}: {e}", cfg))


def _server(cfg: DirectoryConfig) -> ldap3.Server:
    host, port, use_ssl = _parse_url(cfg)
    tls = None
    if use_ssl or cfg.start_tls:
        tls = _VerifyingTls(_tls_context(cfg))
    return ldap3.Server(host, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE, connect_timeout=cfg.timeout)


def _open(cfg: DirectoryConfig, user: str | None, password: str | None, action: str) -> _SafeConnection:
    """Open (and StartTLS) a connection, then simple-bind; never returns unauthenticated-by-accident."""
    server = _server(cfg)
    conn = _SafeConnection(
        server,
        user=user or None,
        password=password if user else None,
        authentication=ldap3.SIMPLE if user else ldap3.ANONYMOUS,
        auto_bind=ldap3.AUTO_BIND_NONE,
        read_only=True,
        raise_exceptions=True,
        receive_timeout=max(1, math.ceil(cfg.timeout)),  # ldap3 packs it as an integer
        check_names=False,
        auto_referrals=False,
        return_empty_attributes=True,
    )
    try:
        conn.open()
        if cfg.start_tls:
            try:
                conn.start_tls()
            except lx.LDAPOperationResult as e:  # the server answered the StartTLS request with an error
                detail = e.description + (f" ({e.message})" if e.message else "")
                raise DirectoryTLSError(
                    f"StartTLS with {cfg.url.strip()} failed: the server refused it: {detail}"
                ) from None
        conn.bind()
        return conn
    except Exception as e:
        _close(conn)
        raise _translate(e, cfg, action) from None  # no chained ldap3 exception, no password anywhere


def _close(conn) -> None:
    try:
        conn.unbind()
    except Exception:  # closing is best effort
        pass


def connect(cfg: DirectoryConfig) -> ldap3.Connection:
    """A bound, read-only connection as the configured service account (anonymous if no bind DN).

    Raises :class:`DirectoryError` subclasses; the caller must ``unbind()`` the connection.
    """
    if cfg.bind_dn and not cfg.bind_password:
        # An empty password turns a simple bind into an *unauthenticated* bind, which servers
        # may answer with success: refuse it instead of silently reading as anonymous.
        raise DirectoryConfigError(f"no bind password configured for {cfg.bind_dn}")
    if cfg.bind_dn:
        try:
            _split_dn(cfg.bind_dn)
        except DirectoryConfigError:
            raise DirectoryConfigError(f"bind DN {cfg.bind_dn!r} is not a valid DN") from None
    log.debug(
        "connecting to %s as %s%s", cfg.url, cfg.bind_dn or "anonymous", " with StartTLS" if cfg.start_tls else ""
    )
    return _open(cfg, cfg.bind_dn, cfg.bind_password, f"connecting to {cfg.url}")


def _check_base(conn, cfg: DirectoryConfig) -> None:
    """Make a missing or malformed base DN an explicit error instead of an empty directory."""
    try:
        _split_dn(cfg.base_dn)
    except DirectoryConfigError:
        raise DirectoryBaseDNError(f"base DN {cfg.base_dn!r} is not a valid DN") from None
    try:
        conn.search(cfg.base_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"])
    except Exception as e:
        raise _translate(e, cfg, f"reading base DN {cfg.base_dn}") from None
    if not [r for r in conn.response or [] if r.get("type") == "searchResEntry"]:
        raise DirectoryBaseDNError(
            f"base DN {cfg.base_dn} does not exist on {cfg.url} (or is not visible to {cfg.bind_dn or 'anonymous'})"
        )


def test_connection(cfg: DirectoryConfig) -> tuple[bool, str]:
    """Connect, bind and look up the base DN; (True, summary) or (False, reason). Never raises
    for directory problems, so that a form or ``uus directory add`` can show the reason."""
    try:
        conn = connect(cfg)
    except DirectoryError as e:
        return False, str(e)
    try:
        _check_base(conn, cfg)
        security = (
            "ldaps" if cfg.url.strip().lower().startswith("ldaps:") else ("StartTLS" if cfg.start_tls else "no TLS")
        )
        return True, (
            f"connected to {cfg.url.strip()} ({security}) as {cfg.bind_dn or 'anonymous'}; "
            f"base DN {normalize_dn(cfg.base_dn)} found"
        )
    except DirectoryError as e:
        return False, str(e)
    finally:
        _close(conn)


test_connection.__test__ = False  # its name must not make pytest collect it where it is imported


# =============================================================================
# Reading
# =============================================================================
def _values(attributes, name: str) -> list[str]:
    raw = attributes.get(name) if attributes is not None else None
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raw = [raw]
    out = []
    for v in raw:
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        v = str(v).strip()
        if v:
            out.append(v)
    return out


def _first(attributes, names, rdn: tuple[str, str] | None = None) -> tuple[str, str] | None:
    """(attribute, value) of the first attribute with a value; the RDN's own value wins when
    that attribute is multi-valued (``cn: web1`` / ``cn: web1-alias``)."""
    for name in names:
        values = _values(attributes, name)
        if not values:
            continue
        if rdn and rdn[0] == name.lower():
            for v in values:
                if v.casefold() == rdn[1].casefold():
                    return name, v
        return name, values[0]
    return None


def _paged(conn, cfg: DirectoryConfig, search_filter: str, attributes, what: str):
    """Yield (dn as the server spells it, attributes) of every entry, page by page."""
    try:
        for item in conn.extend.standard.paged_search(
            cfg.base_dn,
            search_filter,
            search_scope=ldap3.SUBTREE,
            attributes=list(attributes),
            paged_size=max(1, int(cfg.page_size)),
            generator=True,
        ):
            if item.get("type") != "searchResEntry":  # AD sends referrals to other partitions
                continue
            yield item["dn"], item.get("attributes") or {}
    except DirectoryError:
        raise
    except Exception as e:
        raise _translate(e, cfg, f"reading {what} under {cfg.base_dn}") from None
    # ldap3 does not raise for size and time limits: the search just ends early. A silently
    # truncated directory would make a sync remove machines from OUs, so make it an error.
    result = conn.result or {}
    if result.get("result") in (3, 4):  # timeLimitExceeded, sizeLimitExceeded
        exc = lx.LDAPOperationResult(
            result=result["result"], description=result.get("description"), message=result.get("message")
        )
        raise _translate(exc, cfg, f"reading {what} under {cfg.base_dn}")


def read_directory(cfg: DirectoryConfig) -> DirectorySnapshot:
    """Read OUs, computers, groups and users under the base DN with paged searches.

    Entries that cannot be used are reported in ``snapshot.warnings``; network, TLS, bind and
    base-DN problems raise :class:`DirectoryError`.
    """
    conn = connect(cfg)
    try:
        _check_base(conn, cfg)
        snap = DirectorySnapshot(base_dn=normalize_dn(cfg.base_dn))
        _read_ous(conn, cfg, snap)
        _read_computers(conn, cfg, snap)
        _read_groups(conn, cfg, snap)
        _read_users(conn, cfg, snap)
        _fill_user_groups(snap)
    finally:
        _close(conn)
    log.info(
        "read %s: %d OUs, %d computers, %d groups, %d users, %d warnings",
        cfg.url,
        len(snap.ous),
        len(snap.computers),
        len(snap.groups),
        len(snap.users),
        len(snap.warnings),
    )
    return snap


def _entry_dn(raw_dn: str, snap: DirectorySnapshot) -> tuple[str, list] | None:
    try:
        return normalize_dn(raw_dn), _split_dn(raw_dn)
    except DirectoryConfigError:
        snap.warnings.append(DirectoryWarning(raw_dn, "the server returned a DN that cannot be parsed"))
        return None


def _read_ous(conn, cfg, snap) -> None:
    found = []
    for raw_dn, attrs in _paged(conn, cfg, cfg.ou_filter, ["ou", "name"], "OUs"):
        parsed = _entry_dn(raw_dn, snap)
        if not parsed:
            continue
        dn, rdns = parsed
        name = _first(attrs, ["ou", "name"], rdns[0][0])
        found.append((dn, name[1] if name else rdns[0][0][1]))
    keys = {dn_key(dn) for dn, _ in found}
    for dn, name in sorted(found, key=lambda x: (x[0].count(","), dn_key(x[0]))):
        parents = _ancestors(_split_dn(dn), None, keys)
        snap.ous.append(DirectoryOU(dn=dn, name=name, parent_dn=parents[0] if parents else None))


def _read_computers(conn, cfg, snap) -> None:
    names = list(cfg.hostname_attributes)
    for raw_dn, attrs in _paged(conn, cfg, cfg.computer_filter, names, "computers"):
        parsed = _entry_dn(raw_dn, snap)
        if not parsed:
            continue
        dn, rdns = parsed
        if len(rdns) < 2:
            continue
        host = None
        tried = []
        for attr in names:  # first attribute holding a usable host name wins
            got = _first(attrs, [attr], rdns[0][0])
            if got is None:
                continue
            tried.append(f"{attr}={got[1]!r}")
            host = _host_name(got[1])
            if host:
                break
        if host is None:
            reason = (
                ("no usable host name in " + ", ".join(tried))
                if tried
                else ("no host name attribute (" + ", ".join(names) + ")")
            )
            snap.warnings.append(DirectoryWarning(dn, reason))
            continue
        hostname, fqdn = host
        snap.computers.append(DirectoryComputer(dn=dn, hostname=hostname, fqdn=fqdn, ou_dn=parent_dn(dn)))
    snap.computers.sort(key=lambda c: (c.hostname, dn_key(c.dn)))
    by_name: dict[str, list[str]] = defaultdict(list)
    for c in snap.computers:
        by_name[c.hostname].append(c.dn)
    for c in snap.computers:  # kept (the directory says so) but worth an admin's look
        others = [d for d in by_name[c.hostname] if d != c.dn]
        if others:
            snap.warnings.append(DirectoryWarning(c.dn, f"host name {c.hostname} is also used by {'; '.join(others)}"))


def _read_groups(conn, cfg, snap) -> None:
    member_attrs = list(cfg.member_attributes)
    for raw_dn, attrs in _paged(conn, cfg, cfg.group_filter, ["cn", "name", *member_attrs], "groups"):
        parsed = _entry_dn(raw_dn, snap)
        if not parsed:
            continue
        dn, rdns = parsed
        name = _first(attrs, ["cn", "name"], rdns[0][0])
        members = []
        for attr in member_attrs:
            for value in _values(attrs, attr):
                # uniqueMember may carry an optional "#'0101'B" UID suffix (nameAndOptionalUID)
                value = re.sub(r"#'[01]*'B$", "", value)
                try:
                    members.append(normalize_dn(value))
                except DirectoryConfigError:
                    snap.warnings.append(DirectoryWarning(dn, f"{attr} value {value!r} is not a DN; ignored"))
        unique = {dn_key(m): m for m in members}
        snap.groups.append(
            DirectoryGroup(
                dn=dn, name=name[1] if name else rdns[0][0][1], members=tuple(sorted(unique.values(), key=dn_key))
            )
        )
    snap.groups.sort(key=lambda g: dn_key(g.dn))


def _fill_user_groups(snap: DirectorySnapshot) -> None:
    """Give each user every group it is in: direct members, memberOf, and groups nesting those."""
    parents: dict[str, set[str]] = defaultdict(set)  # member key -> keys of groups listing it
    spelled = {}
    for g in snap.groups:
        gk = dn_key(g.dn)
        spelled[gk] = g.dn
        for m in g.members:
            parents[dn_key(m)].add(gk)
    for i, user in enumerate(snap.users):
        todo = set(parents.get(dn_key(user.dn), ()))
        for extra in user.groups:  # memberOf, as read
            k = dn_key(extra)
            spelled.setdefault(k, extra)
            todo.add(k)
        found: set[str] = set()
        while todo:
            k = todo.pop()
            if k not in found:
                found.add(k)
                todo |= parents.get(k, set())
        snap.users[i] = DirectoryUser(
            user.dn, user.login, user.display_name, user.mail, tuple(sorted((spelled[k] for k in found), key=dn_key))
        )


def _user_from(raw_dn: str, attrs, cfg: DirectoryConfig, snap: DirectorySnapshot | None):
    try:
        dn, rdns = normalize_dn(raw_dn), _split_dn(raw_dn)
    except DirectoryConfigError:
        if snap is not None:
            snap.warnings.append(DirectoryWarning(raw_dn, "the server returned a DN that cannot be parsed"))
        return None
    login = _first(attrs, cfg.login_attributes, rdns[0][0])
    if login is None:
        if snap is not None:
            snap.warnings.append(
                DirectoryWarning(dn, "no login attribute (" + ", ".join(cfg.login_attributes) + "); cannot log in")
            )
        return None
    display = _first(attrs, ["displayName", "cn"], rdns[0][0])
    mail = _first(attrs, ["mail"])
    member_of = []
    for value in _values(attrs, "memberOf"):
        try:
            member_of.append(normalize_dn(value))
        except DirectoryConfigError:
            pass
    return DirectoryUser(
        dn=dn,
        login=login[1].lower(),
        display_name=display[1] if display else login[1],
        mail=mail[1] if mail else None,
        groups=tuple(member_of),
    )


_USER_ATTRIBUTES = ("displayName", "cn", "mail", "memberOf")


def _read_users(conn, cfg, snap) -> None:
    attrs_wanted = [*cfg.login_attributes, *_USER_ATTRIBUTES]
    logins: dict[str, str] = {}
    for raw_dn, attrs in _paged(conn, cfg, cfg.user_filter, attrs_wanted, "users"):
        user = _user_from(raw_dn, attrs, cfg, snap)
        if user is None:
            continue
        if user.login in logins:
            snap.warnings.append(DirectoryWarning(user.dn, f"login {user.login} is also used by {logins[user.login]}"))
        else:
            logins[user.login] = user.dn
        snap.users.append(user)
    snap.users.sort(key=lambda u: (u.login, dn_key(u.dn)))


# =============================================================================
# Logging in
# =============================================================================
def authenticate(cfg: DirectoryConfig, login: str, password: str) -> DirectoryUser | None:
    """Check a person's login and password against the directory.

    Finds the user by a login attribute with the service account, then simple-binds as the
    user's DN. Returns the user with every group DN it belongs to (by the groups' member
    attributes, nested groups included, and by ``memberOf`` when the server keeps it), or None
    for a wrong login or password. An empty password is refused without asking the server: LDAP
    treats a simple bind with a DN and no password as an *unauthenticated* bind that succeeds.
    Directory outages raise :class:`DirectoryError` so that they are not mistaken for a bad password.
    """
    login = (login or "").strip()
    if not login or not password:
        log.info("directory login refused: empty %s", "login" if not login else "password")
        return None
    conn = connect(cfg)
    try:
        by_login = "".join(f"({a}={escape_filter_chars(login)})" for a in cfg.login_attributes)
        flt = f"(&{_wrap(cfg.user_filter)}(|{by_login}))"
        matches = list(_paged(conn, cfg, flt, [*cfg.login_attributes, *_USER_ATTRIBUTES], "the user"))
        if len(matches) != 1:
            log.info(
                "directory login for %r refused: %s",
                login,
                "no such user" if not matches else f"{len(matches)} entries match",
            )
            return None
        raw_dn, attrs = matches[0]
        user = _user_from(raw_dn, attrs, cfg, None)
        if user is None:
            return None
        if not _password_ok(cfg, raw_dn, password):
            log.info("directory login for %r refused: wrong password", login)
            return None
        groups = _groups_of(conn, cfg, raw_dn, _values(attrs, "memberOf"))
    finally:
        _close(conn)
    log.info("directory login for %r accepted (%s, %d groups)", login, user.dn, len(groups))
    return DirectoryUser(
        dn=user.dn, login=user.login, display_name=user.display_name, mail=user.mail, groups=tuple(groups)
    )


def _wrap(flt: str) -> str:
    flt = flt.strip()
    return flt if flt.startswith("(") else f"({flt})"


def _password_ok(cfg: DirectoryConfig, user_dn: str, password: str) -> bool:
    user_cfg = DirectoryConfig(**{**cfg.__dict__, "bind_dn": user_dn, "bind_password": password})
    try:
        conn = _open(user_cfg, user_dn, password, "checking the password")
    except DirectoryBindError:
        return False
    except DirectorySearchError:  # e.g. unwillingToPerform for a locked or disabled account
        return False
    _close(conn)
    return True


def _groups_of(conn, cfg: DirectoryConfig, user_dn: str, member_of: list[str]) -> list[str]:
    found: dict[str, str] = {}
    for value in member_of:
        try:
            found.setdefault(dn_key(value), normalize_dn(value))
        except DirectoryConfigError:
            continue
    frontier = [user_dn, *found.values()]
    searched: set[str] = set()
    for _depth in range(_NESTED_GROUP_DEPTH):
        frontier = [d for d in frontier if dn_key(d) not in searched]
        if not frontier:
            break
        searched.update(dn_key(d) for d in frontier)
        terms = "".join(f"({a}={escape_filter_chars(d)})" for d in frontier for a in cfg.member_attributes)
        new = []
        for raw_dn, _attrs in _paged(conn, cfg, f"(&{_wrap(cfg.group_filter)}(|{terms}))", ["1.1"], "groups"):
            k = dn_key(raw_dn)
            if k not in found:
                found[k] = normalize_dn(raw_dn)
                new.append(found[k])
        frontier = new + [d for d in found.values() if dn_key(d) not in searched]
    return sorted(found.values(), key=dn_key)
