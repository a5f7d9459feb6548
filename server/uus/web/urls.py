from django.urls import path

from . import views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/selftest/", views.job_selftest, name="job_selftest"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/status/", views.job_status, name="job_status"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("enrollment/", views.enrollment, name="enrollment"),
    path("enrollment/<int:pk>/revoke/", views.enrollment_revoke, name="enrollment_revoke"),
    path("users/", views.user_list, name="user_list"),
]
