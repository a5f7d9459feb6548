from django.urls import path

from . import views

app_name = "exposure"

urlpatterns = [
    path("", views.search, name="search"),
]
