"""Fixtures of the catalog tests: a throwaway archive signing key made by the real gpg."""

import pytest

from .signed_archive import ArchiveKey, have_gpg


@pytest.fixture(scope="module")
def archive_key(tmp_path_factory):
    """A throwaway ed25519 signing key made by the real gpg (about a second)."""
    if not have_gpg():
        pytest.fail("gpg and gpgv are needed (scripts/install-system-deps installs them)")
    key = ArchiveKey.create(tmp_path_factory.mktemp("gnupg"))
    yield key
    key.close()
