"""Errors of the directory app, each with a message an administrator can act on."""

from uus.core.exceptions import Conflict, NotFound, UusError


class DirectorySourceNotFound(NotFound):
    code = "directory_not_found"


class DirectorySourceExists(Conflict):
    code = "directory_exists"


class DirectorySourceInvalid(UusError):
    """A setting of a directory source is unusable (URL, DN, filter, CA certificate, password)."""

    code = "directory_invalid"


class DirectorySyncFailed(UusError):
    """Reading the directory failed; the last good state is kept and the error is recorded."""

    code = "directory_sync_failed"
    status = 502


class DirectorySecretMissing(UusError):
    """The bind password's file is gone (a data directory restored without its secrets/)."""

    code = "directory_secret_missing"


class OrganizationalUnitNotFound(UusError):
    """An OU named as a filter or target is not in any synced directory (a 400: the request is wrong)."""

    code = "ou_not_found"
