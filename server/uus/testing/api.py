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
    Endpoint("GET", "/api/v1/rings/", "auditor"),
    Endpoint("POST", "/api/v1/rings/", "admin", {"name": "pilot", "position": 50}),
    Endpoint("GET", "/api/v1/rings/test/", "auditor"),
    Endpoint("POST", "/api/v1/rings/test/members/", "operator", lambda: {"machines": [_latest_machine()]}),
    Endpoint("POST", "/api/v1/rings/test/promote/", "operator", {}),
    Endpoint("GET", "/api/v1/approvals/?ring=test", "auditor"),
    Endpoint(
        "POST",
        "/api/v1/approvals/",
        "operator",
        {"ring": "test", "package": "jq", "version": "1.6-2.1+deb12u3", "state": "approved"},
    ),
    Endpoint(
        "POST",
        "/api/v1/approvals/bulk/",
        "operator",
        {"ring": "test", "state": "declined", "items": [{"package": "jq", "version": "1.6-2.1+deb12u3"}]},
    ),
    Endpoint("GET", "/api/v1/approvals/{approval}/", "auditor"),
    Endpoint("GET", "/api/v1/approval-rules/", "auditor"),
    Endpoint(
        "POST",
        "/api/v1/approval-rules/",
        "operator",
        {"ring": "test", "kind": "auto_approve_security", "min_priority": "high"},
    ),
    Endpoint("GET", "/api/v1/approval-rules/{rule}/", "auditor"),
    Endpoint("DELETE", "/api/v1/approval-rules/{rule}/", "operator"),
    Endpoint("GET", "/api/v1/updates/?ring=test", "auditor"),
    Endpoint("GET", "/api/v1/groups/", "auditor"),
    Endpoint("POST", "/api/v1/groups/", "operator", {"name": "web", "kind": "rule", "hostname_pattern": "web-*"}),
    Endpoint("GET", "/api/v1/groups/{group}/", "auditor"),
    Endpoint("PATCH", "/api/v1/groups/{group}/", "operator", {"description": "pilots"}),
    Endpoint("DELETE", "/api/v1/groups/{group}/", "operator"),
    Endpoint("GET", "/api/v1/deployments/", "auditor"),
    Endpoint("POST", "/api/v1/deployments/", "operator", lambda: {"target": f"machine:{_latest_machine()}"}),
    Endpoint("GET", "/api/v1/deployments/{deployment}/", "auditor"),
    Endpoint("POST", "/api/v1/deployments/{deployment}/cancel/", "operator"),
    Endpoint("POST", "/api/v1/deployments/{deployment_failed}/retry/", "operator"),
    Endpoint("POST", "/api/v1/deployments/{deployment_done}/rollback/", "operator"),
    Endpoint("GET", "/api/v1/machine-jobs/", "auditor"),
    Endpoint("GET", "/api/v1/machine-jobs/{machine_job}/", "auditor"),
    Endpoint("GET", "/api/v1/maintenance-windows/", "auditor"),
    Endpoint(
        "POST",
        "/api/v1/maintenance-windows/",
        "operator",
        {"name": "nightly", "weekdays": [0, 1], "start": "22:00", "duration_minutes": 60},
    ),
    Endpoint("GET", "/api/v1/maintenance-windows/{window}/", "auditor"),
    Endpoint("GET", "/api/v1/audit-events/", "auditor"),
    Endpoint("GET", "/api/v1/audit-events/{audit_event}/", "auditor"),
    Endpoint("GET", "/api/v1/packages/", "auditor"),
    Endpoint("POST", "/api/v1/packages/", "operator", lambda: _upload_body()),
    Endpoint("GET", "/api/v1/packages/{package}/", "auditor"),
    Endpoint("DELETE", "/api/v1/packages/{package}/", "operator"),
    Endpoint("GET", "/api/v1/repos/", "auditor"),
    Endpoint("GET", "/api/v1/repos/production/", "auditor"),
    Endpoint("POST", "/api/v1/repos/production/publish/", "operator"),
    Endpoint("GET", "/api/v1/signing-key/", "auditor"),
    Endpoint("POST", "/api/v1/signing-key/rotate/", "admin"),
    Endpoint("POST", "/api/v1/signing-key/retire/", "admin", lambda: _overlapping_key()),
    Endpoint("GET", "/api/v1/cache/", "auditor"),
]


def _upload_body() -> dict:
    import base64
    from pathlib import Path

    deb = Path(__file__).resolve().parents[2] / "tests/data/debs/hello_2.10-3_amd64.deb"
    return {"content_base64": base64.b64encode(deb.read_bytes()).decode()}


def _overlapping_key() -> dict:
    """Rotate, so that there is an old key to retire."""
    from uus.repos.services import signing_key_rotate

    return {"fingerprint": signing_key_rotate()["overlap"][-1]}


def _private_package() -> str:
    from uus.repos.models import PrivatePackage

    n = PrivatePackage.objects.count()
    return str(
        PrivatePackage.objects.create(
            name=f"internal-tool{n}",
            version="1.0",
            architecture="all",
            source=f"internal-tool{n}",
            source_version="1.0",
            size=1,
            sha256="0" * 64,
            md5="0" * 32,
            sha1="0" * 40,
            fields={},
            filename=f"pool/local/main/i/internal-tool{n}/internal-tool{n}_1.0_all.deb",
        ).pk
    )


def _latest_machine() -> str:
    from uus.inventory.models import Machine

    return Machine.objects.latest("pk").hostname


def _deployment_objects() -> dict[str, str]:
    """An approval, a group, a window, an audit event and deployments to cancel, retry and roll back."""
    from django.utils import timezone

    from uus.approvals import services as approvals
    from uus.approvals.models import Ring
    from uus.approvals.tests.factories import rings_make
    from uus.audit.models import AuditEvent
    from uus.deployments import services as deployments
    from uus.inventory.tests.factories import machine_make

    rings_make()  # the rows of migration 0001, gone after a transactional test's flush
    n = Ring.objects.count() + AuditEvent.objects.count()
    test = Ring.objects.get(name="test")
    approval = approvals.approval_set(ring=test, name="libjq1", version="1.6-2.1+deb12u3", state="held")
    group = approvals.group_create(name=f"grp{n}")
    production = Ring.objects.get(name="production")
    rule = approvals.approval_rule_create(ring=production, kind="auto_promote", from_ring=test, after_days=3)
    window = deployments.window_create(name=f"win{n}", weekdays=[6], start="01:00", duration_minutes=60)
    a, b = machine_make(f"dep-a-{n}"), machine_make(f"dep-b-{n}")
    later = deployments.deployment_create(target=f"machine:{a.hostname}", at="2099-01-01T00:00Z")
    failed = deployments.deployment_create(target=f"machine:{a.hostname}", action="install", packages=["hello"])
    done = deployments.deployment_create(target=f"machine:{b.hostname}", action="install", packages=["hello"])
    now = timezone.now().isoformat()
    for machine, dep, status, packages in (
        (a, failed, "failed", []),
        (b, done, "succeeded", [{"name": "hello", "architecture": "amd64", "before": "2.10-2", "after": "2.10-3"}]),
    ):
        job = dep.jobs.get()
        result = {"job_id": str(job.pk), "status": status, "error": None if packages else "apt_failed"}
        result.update(exit_code=0, output="", started_at=now, finished_at=now, packages=packages)
        deployments.job_results_record(machine, [result])
    return {
        "approval": str(approval.pk),
        "group": group.name,
        "rule": str(rule.pk),
        "window": window.name,
        "audit_event": str(AuditEvent.objects.latest("id").pk),
        "deployment": str(later.pk),
        "deployment_failed": str(failed.pk),
        "deployment_done": str(done.pk),
        "machine_job": str(done.jobs.get().pk),
    }


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
        "package": _private_package(),
        **_directory_objects(),
        **_deployment_objects(),
    }
