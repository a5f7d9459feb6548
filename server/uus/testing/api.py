"""Per-endpoint role checks: every API route is declared here with the least role that may call it.
`server/tests/test_api_permissions.py` calls each one anonymously and as every role, and fails when a
route exists that this table does not declare, so no endpoint can skip its permission test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # may contain {job}, {token}, {schedule}, {enrollment_token}, {user} placeholders
    role: str  # least role allowed
    body: dict | Callable[[], dict] = field(default_factory=dict)

    def payload(self) -> dict:
        return self.body() if callable(self.body) else self.body


def _test_keyring() -> str:
    import base64
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "catalog/tests/data/keyrings/debian-archive-keyring.gpg"
    return base64.b64encode(path.read_bytes()).decode()


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/users/", "admin"),
    Endpoint("POST", "/api/v1/users/", "admin", {"username": "newbie", "password": "a-long-password-9"}),
    Endpoint("GET", "/api/v1/users/{user}/", "admin"),
    Endpoint("PATCH", "/api/v1/users/{user}/", "admin", {"email": "x@example.org"}),
    Endpoint("DELETE", "/api/v1/users/{user}/", "admin"),
    Endpoint("GET", "/api/v1/users/me/", "auditor"),
    Endpoint("GET", "/api/v1/api-tokens/", "auditor"),
    Endpoint("POST", "/api/v1/api-tokens/", "auditor", {"name": "mine"}),
    Endpoint("GET", "/api/v1/api-tokens/{token}/", "auditor"),
    Endpoint("POST", "/api/v1/api-tokens/{token}/revoke/", "auditor"),
    Endpoint("GET", "/api/v1/jobs/", "auditor"),
    Endpoint("POST", "/api/v1/jobs/", "admin", {"name": "uus.jobs.tasks.selftest", "kwargs": {"steps": 1, "delay": 0}}),
    Endpoint("GET", "/api/v1/jobs/{job}/", "auditor"),
    Endpoint("POST", "/api/v1/jobs/{job}/cancel/", "operator"),
    Endpoint("GET", "/api/v1/schedules/", "auditor"),
    Endpoint("GET", "/api/v1/schedules/{schedule}/", "auditor"),
    Endpoint("PATCH", "/api/v1/schedules/{schedule}/", "admin", {"interval_seconds": 7200}),
    Endpoint("GET", "/api/v1/enrollment-tokens/", "auditor"),
    Endpoint("POST", "/api/v1/enrollment-tokens/", "admin", {"comment": "lab"}),
    Endpoint("GET", "/api/v1/enrollment-tokens/{enrollment_token}/", "auditor"),
    Endpoint("POST", "/api/v1/enrollment-tokens/{enrollment_token}/revoke/", "admin"),
    Endpoint("GET", "/api/v1/machines/", "auditor"),
    Endpoint("GET", "/api/v1/machines/?release=22.04&package=jq&version_lt=1.6-2.1%2Bdeb12u3&stale=false", "auditor"),
    Endpoint("GET", "/api/v1/machines/{machine}/", "auditor"),
    Endpoint("GET", "/api/v1/machines/{machine}/packages/", "auditor"),
    Endpoint("GET", "/api/v1/machines/{machine}/history/", "auditor"),
    Endpoint("GET", "/api/v1/machines/{machine}/exposure/", "auditor"),
    Endpoint("POST", "/api/v1/machines/{machine}/revoke/", "admin"),
    Endpoint("GET", "/api/v1/notices/", "auditor"),
    Endpoint("GET", "/api/v1/notices/{notice}/", "auditor"),
    Endpoint("POST", "/api/v1/notices/import/", "admin", {"source": "/nonexistent/osv"}),
    Endpoint("GET", "/api/v1/cves/", "auditor"),
    Endpoint("GET", "/api/v1/cves/{cve}/", "auditor"),
    Endpoint("GET", "/api/v1/cves/{cve}/fixes/", "auditor"),
    Endpoint("GET", "/api/v1/upstreams/", "auditor"),
    Endpoint(
        "POST",
        "/api/v1/upstreams/",
        "admin",
        lambda: {
            "name": "debian",
            "url": "http://127.0.0.1:9/debian",
            "suites": ["bookworm"],
            "components": ["main"],
            "architectures": ["amd64"],
            "keyring": _test_keyring(),
        },
    ),
    Endpoint("GET", "/api/v1/upstreams/{upstream}/", "auditor"),
    Endpoint("POST", "/api/v1/upstreams/{upstream}/sync/", "admin"),
    Endpoint("DELETE", "/api/v1/upstreams/{upstream}/", "admin"),
    Endpoint("GET", "/api/v1/archive-packages/?name=jq", "auditor"),
    Endpoint("GET", "/api/v1/exposure/?q=CVE-2024-0001", "auditor"),
    Endpoint("GET", "/api/v1/cves/{cve}/machines/", "auditor"),
    Endpoint("GET", "/api/v1/notices/{notice}/machines/", "auditor"),
    Endpoint("GET", "/api/v1/directories/", "auditor"),
    Endpoint(
        "POST",
        "/api/v1/directories/",
        "admin",
        {"name": "corp-new", "url": "ldap://127.0.0.1:9", "base_dn": "dc=corp,dc=test"},
    ),
    Endpoint("GET", "/api/v1/directories/{directory}/", "auditor"),
    Endpoint("PATCH", "/api/v1/directories/{directory}/", "admin", {"page_size": 100}),
    Endpoint("DELETE", "/api/v1/directories/{directory}/", "admin"),
    Endpoint("POST", "/api/v1/directories/{directory}/test-connection/", "admin"),
    Endpoint("POST", "/api/v1/directories/{directory}/sync/", "admin", {"dry_run": True}),
    Endpoint("GET", "/api/v1/directories/{directory}/unmatched/", "auditor"),
    Endpoint("GET", "/api/v1/directory-role-mappings/", "auditor"),
    Endpoint(
        "POST",
        "/api/v1/directory-role-mappings/",
        "admin",
        lambda: {"source": _latest_directory(), "group_dn": "cn=ops,dc=corp,dc=test", "role": "operator"},
    ),
    Endpoint("GET", "/api/v1/directory-role-mappings/{role_mapping}/", "auditor"),
    Endpoint("PATCH", "/api/v1/directory-role-mappings/{role_mapping}/", "admin", {"role": "admin"}),
    Endpoint("DELETE", "/api/v1/directory-role-mappings/{role_mapping}/", "admin"),
    Endpoint("GET", "/api/v1/organizational-units/", "auditor"),
    Endpoint("GET", "/api/v1/organizational-units/{ou}/", "auditor"),
]


def _latest_directory() -> str:
    from uus.directory.models import DirectorySource

    return DirectorySource.objects.latest("pk").name


def _directory_objects() -> dict[str, str]:
    """A directory (anonymous bind, nothing listening), one role mapping and one OU."""
    from uus.directory.models import DirectorySource, OrganizationalUnit, RoleMapping

    n = DirectorySource.objects.count()
    source = DirectorySource.objects.create(name=f"dir{n}", url="ldap://127.0.0.1:9", base_dn="dc=corp,dc=test")
    mapping = RoleMapping.objects.create(
        source=source, group_dn="cn=admins,dc=corp,dc=test", group_dn_key="cn=admins,dc=corp,dc=test", role="admin"
    )
    ou = OrganizationalUnit.objects.create(
        source=source, dn="ou=x,dc=corp,dc=test", dn_key="ou=x,dc=corp,dc=test", name="x"
    )
    return {"directory": source.name, "role_mapping": str(mapping.pk), "ou": str(ou.pk)}


def make_objects(owner) -> dict[str, str]:
    """One object of each kind the placeholders name, created fresh for one call."""
    from uus.accounts.models import User
    from uus.accounts.services import api_token_create
    from uus.catalog.models import Cve, Notice, Upstream
    from uus.inventory.services import enrollment_token_create
    from uus.inventory.tests.factories import machine_make
    from uus.jobs.models import Schedule
    from uus.jobs.services import dispatch, schedules_ensure

    schedules_ensure()
    notice = Notice.objects.create(
        id=f"USN-{Notice.objects.count() + 1}-1",
        kind="usn",
        published="2024-01-01T00:00Z",
        modified="2024-01-01T00:00Z",
    )
    cve, _ = Cve.objects.get_or_create(id="CVE-2024-0001")
    notice.cves.add(cve)
    upstream = Upstream.objects.create(
        name=f"up{Upstream.objects.count()}",
        url="http://127.0.0.1:9/",
        suites=["x"],
        components=["main"],
        architectures=["amd64"],
        keyring="/none",
    )
    token, _ = api_token_create(user=owner, name="placeholder")
    victim = User.objects.create_user(username=f"victim-{User.objects.count()}", password="a-long-password-3")
    return {
        "job": str(dispatch("uus.jobs.tasks.selftest", kwargs={"steps": 1, "delay": 0}).pk),
        "token": str(token.pk),
        "schedule": str(Schedule.objects.first().pk),
        "enrollment_token": str(enrollment_token_create(comment="x")[0].pk),
        "machine": str(machine_make().uuid),
        "user": str(victim.pk),
        "notice": notice.pk,
        "cve": cve.pk,
        "upstream": upstream.name,
        **_directory_objects(),
    }
