from django.urls import path, re_path

from . import views

app_name = "repos"

urlpatterns = [
    path("repo/key.asc", views.key_asc, name="key_asc"),
    re_path(r"^repo/(?P<ring>[^/]+)/(?P<path>.+)$", views.repo_file, name="repo_file"),
    path("repositories/", views.repository_list, name="repository_list"),
    path("repositories/<slug:ring>/publish/", views.repository_publish, name="repository_publish"),
    path("packages/", views.package_list, name="package_list"),
    path("packages/upload/", views.package_upload, name="package_upload"),
    path("packages/<int:pk>/remove/", views.package_remove, name="package_remove"),
]
