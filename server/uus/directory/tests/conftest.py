"""The session-wide throwaway slapd (corp.ldif, TLS, memberOf) for the directory tests."""

from uus.testing.slapd import slapd_server  # noqa: F401  (registers the fixture)
