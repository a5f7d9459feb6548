"""/api/agent/v1/: the paths end with a slash (protocol/v1/README.md); without one they work too."""

from django.urls import re_path

from . import views

app_name = "agentapi"

urlpatterns = [
    re_path(r"^register/?$", views.register, name="register"),
    re_path(r"^check-in/?$", views.check_in, name="check-in"),
    re_path(r"^inventory/?$", views.inventory, name="inventory"),
]
