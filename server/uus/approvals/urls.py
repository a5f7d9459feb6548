from django.urls import path

from . import views

app_name = "approvals"

urlpatterns = [
    path("updates/", views.update_list, name="update_list"),
    path("updates/decide/", views.update_decide, name="update_decide"),
    path("rings/", views.ring_board, name="ring_board"),
    path("rings/<slug:name>/promote/", views.ring_promote, name="ring_promote"),
]
