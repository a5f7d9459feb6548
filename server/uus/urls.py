from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from uus.api.errors import not_found_view
from uus.web import views as web_views

urlpatterns = [
    path("healthz", web_views.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("uus.api.urls")),
    path("api/agent/v1/", include("uus.agentapi.urls")),
    re_path(r"^api/", not_found_view),
    path("machines/", include("uus.inventory.urls")),
    path("", include("uus.repos.urls")),
    path("", include("uus.catalog.urls")),
    path("directory/", include("uus.directory.urls")),
    path("exposure/", include("uus.exposure.urls")),
    path("", include("uus.approvals.urls")),
    path("deployments/", include("uus.deployments.urls")),
    path("", include("uus.web.urls")),
]
