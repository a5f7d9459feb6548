from django.urls import path

from . import views

app_name = "inventory"

urlpatterns = [
    path("", views.machine_list, name="machine_list"),
    path("<uuid:uuid>/", views.machine_detail, name="machine_detail"),
    path("<uuid:uuid>/revoke/", views.machine_revoke, name="machine_revoke"),
]
