"""Fixtures of the directory tests: real slapd servers (never mocks) and a private data directory.

* ``slapd_server``: the session-wide slapd with corp.ldif, TLS (ldaps and StartTLS) and memberOf;
  read-only, shared by every test of the session.
* ``acceptance_ldap``: the acceptance check's own slapd.conf.in and dit.ldif, one per module.
* ``fresh_ldap``: a slapd per test, loaded with the acceptance dit.ldif, for tests that change the
  directory or stop the server.
"""

from pathlib import Path

import pytest

from uus.testing.slapd import slapd_fixture, slapd_server  # noqa: F401  (registers the fixture)

DATA = Path(__file__).parent / "data"
ACCEPTANCE = DATA / "acceptance"

acceptance_ldap = slapd_fixture(
    name="acceptance_ldap",
    scope="module",
    ldif=ACCEPTANCE / "dit.ldif",
    config_template=ACCEPTANCE / "slapd.conf.in",
)
fresh_ldap = slapd_fixture(name="fresh_ldap", scope="function", ldif=ACCEPTANCE / "dit.ldif")


@pytest.fixture(autouse=True)
def _private_data_dir(settings, tmp_path):
    """Bind-password files go to a directory of the test's own, never into the shared data dir."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    # Local passwords are not what these tests are about; PBKDF2 would cost ~0.3 s per login attempt.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
