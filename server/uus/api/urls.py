"""/api/v1/: every app registers its ViewSets here, in one router."""

from rest_framework.routers import DefaultRouter

from uus.accounts.api.views import ApiTokenViewSet, UserViewSet
from uus.approvals.api.views import (
    ApprovalRuleViewSet,
    ApprovalViewSet,
    MachineGroupViewSet,
    RingViewSet,
    UpdateViewSet,
)
from uus.audit.api.views import AuditEventViewSet
from uus.catalog.api.views import ArchivePackageViewSet, CveViewSet, NoticeViewSet, UpstreamViewSet
from uus.deployments.api.views import DeploymentViewSet, MachineJobViewSet, MaintenanceWindowViewSet
from uus.directory.api.views import DirectoryViewSet, OrganizationalUnitViewSet, RoleMappingViewSet
from uus.exposure.api.urls import urlpatterns as exposure_urls
from uus.inventory.api.views import EnrollmentTokenViewSet, MachineViewSet
from uus.jobs.api.views import JobViewSet, ScheduleViewSet
from uus.repos.api.views import CacheStatsViewSet, PrivatePackageViewSet, RepositoryViewSet, SigningKeyViewSet

router = DefaultRouter(trailing_slash=True)
router.register("users", UserViewSet, basename="user")
router.register("api-tokens", ApiTokenViewSet, basename="api-token")
router.register("jobs", JobViewSet, basename="job")
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("enrollment-tokens", EnrollmentTokenViewSet, basename="enrollment-token")
router.register("machines", MachineViewSet, basename="machine")
router.register("notices", NoticeViewSet, basename="notice")
router.register("cves", CveViewSet, basename="cve")
router.register("upstreams", UpstreamViewSet, basename="upstream")
router.register("archive-packages", ArchivePackageViewSet, basename="archive-package")
router.register("directories", DirectoryViewSet, basename="directory")
router.register("directory-role-mappings", RoleMappingViewSet, basename="directory-role-mapping")
router.register("organizational-units", OrganizationalUnitViewSet, basename="organizational-unit")
router.register("packages", PrivatePackageViewSet, basename="package")
router.register("repos", RepositoryViewSet, basename="repo")
router.register("signing-key", SigningKeyViewSet, basename="signing-key")
router.register("cache", CacheStatsViewSet, basename="cache")
router.register("rings", RingViewSet, basename="ring")
router.register("approvals", ApprovalViewSet, basename="approval")
router.register("approval-rules", ApprovalRuleViewSet, basename="approval-rule")
router.register("updates", UpdateViewSet, basename="update")
router.register("groups", MachineGroupViewSet, basename="group")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("machine-jobs", MachineJobViewSet, basename="machine-job")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="maintenance-window")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

# Plain views first: they share prefixes with router routes (cves/<id>/machines/).
urlpatterns = exposure_urls + router.urls
