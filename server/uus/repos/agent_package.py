"""The uus-agent package in UUS's own repository.

Built from the agent installed beside the server (uus_agent.debpackage, byte-for-byte the same for
the same sources) and stored as a private package, so it is in every ring's `uus-local` suite and a
machine installs its agent with plain apt from the server it will report to. A daily job publishes
it, and so it is there soon after the first start; `uus agent publish` does it at once.
"""

from __future__ import annotations

import tempfile

import uus_agent
from uus_agent import debpackage

from uus.core.exceptions import UusError

from .models import PrivatePackage
from .services import package_upload

AGENT_PACKAGE = debpackage.PACKAGE


class AgentPackageUnavailable(UusError):
    """This server cannot build the agent package (dpkg-deb missing or failing)."""

    code = "agent_package_unavailable"
    status = 503


def agent_package_current() -> PrivatePackage | None:
    """The stored package of the agent version installed beside this server, if published."""
    return PrivatePackage.objects.filter(name=AGENT_PACKAGE, version=uus_agent.__version__, architecture="all").first()


def agent_package_publish(*, user=None) -> tuple[PrivatePackage, bool]:
    """Build and store the agent package unless this version is stored already. (row, created)."""
    current = agent_package_current()
    if current is not None:
        return current, False
    with tempfile.TemporaryDirectory(prefix="uus-agent-package-") as out:
        try:
            path = debpackage.build(out)
        except debpackage.BuildError as exc:
            raise AgentPackageUnavailable(f"cannot build the uus-agent package: {exc}") from exc
        return package_upload(path=path, user=user)
