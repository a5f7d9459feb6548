from django.urls import path

from . import views

app_name = "deployments"

urlpatterns = [
    path("", views.deployment_list, name="deployment_list"),
    path("new/", views.deployment_create, name="deployment_create"),
    path("windows/new/", views.window_create, name="window_create"),
    path("<int:pk>/", views.deployment_detail, name="deployment_detail"),
    path("<int:pk>/progress/", views.deployment_progress, name="deployment_progress"),
    path("<int:pk>/<slug:verb>/", views.deployment_action, name="deployment_action"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/status/", views.job_status, name="job_status"),
    path("machines/<uuid:uuid>/", views.machine_jobs, name="machine_jobs"),
]
