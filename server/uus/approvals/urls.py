from django.urls import path

from . import views

app_name = "approvals"

urlpatterns = [
    path("updates/", views.update_list, name="update_list"),
    path("updates/decide/", views.update_decide, name="update_decide"),
    path("rings/", views.ring_board, name="ring_board"),
    path("rings/create/", views.ring_create, name="ring_create"),
    path("rings/<slug:name>/members/", views.ring_members, name="ring_members"),
    path("rings/<slug:name>/promote/", views.ring_promote, name="ring_promote"),
    path("approval-rules/", views.rule_list, name="rule_list"),
    path("approval-rules/create/", views.rule_create, name="rule_create"),
    path("approval-rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("groups/", views.group_list, name="group_list"),
    path("groups/create/", views.group_create, name="group_create"),
    path("groups/<slug:name>/delete/", views.group_delete, name="group_delete"),
]
