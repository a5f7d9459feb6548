from django.urls import path

from . import views

app_name = "catalog"

urlpatterns = [
    path("notices/", views.notice_list, name="notice_list"),
    path("notices/<str:pk>/", views.notice_detail, name="notice_detail"),
    path("cves/<str:pk>/", views.cve_detail, name="cve_detail"),
    path("catalog/packages/<str:name>/", views.package_detail, name="package_detail"),
    path("upstreams/", views.upstream_list, name="upstream_list"),
    path("upstreams/<slug:name>/sync/", views.upstream_sync, name="upstream_sync"),
]
