from django.urls import path

from . import views

app_name = "directory"

urlpatterns = [
    path("", views.source_list, name="source_list"),
    path("add/", views.source_add, name="source_add"),
    path("ous/", views.ou_list, name="ou_list"),
    path("<slug:name>/", views.source_detail, name="source_detail"),
    path("<slug:name>/edit/", views.source_edit, name="source_edit"),
    path("<slug:name>/delete/", views.source_delete, name="source_delete"),
    path("<slug:name>/test/", views.source_test, name="source_test"),
    path("<slug:name>/sync/", views.source_sync, name="source_sync"),
    path("<slug:name>/dry-run/", views.dry_run, name="dry_run"),
    path("<slug:name>/dry-run/status/", views.dry_run_status, name="dry_run_status"),
    path("<slug:name>/unmatched/", views.unmatched, name="unmatched"),
    path("<slug:name>/mappings/", views.mapping_add, name="mapping_add"),
    path("<slug:name>/mappings/<int:pk>/delete/", views.mapping_delete, name="mapping_delete"),
]
