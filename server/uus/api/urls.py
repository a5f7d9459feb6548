"""/api/v1/: every app registers its ViewSets here, in one router."""

from rest_framework.routers import DefaultRouter

from uus.accounts.api.views import ApiTokenViewSet, UserViewSet
from uus.catalog.api.views import ArchivePackageViewSet, CveViewSet, NoticeViewSet, UpstreamViewSet
from uus.directory.api.views import DirectoryViewSet, OrganizationalUnitViewSet, RoleMappingViewSet
from uus.exposure.api.urls import urlpatterns as exposure_urls
from uus.inventory.api.views import EnrollmentTokenViewSet, MachineViewSet
from uus.jobs.api.views import JobViewSet, ScheduleViewSet

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

# Plain views first: they share prefixes with router routes (cves/<id>/machines/).
urlpatterns = exposure_urls + router.urls
