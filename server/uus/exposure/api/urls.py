from django.urls import path

from .views import CveMachinesView, ExposureSearchView, MachineExposureView, NoticeMachinesView

urlpatterns = [
    path("exposure/", ExposureSearchView.as_view(), name="exposure-search"),
    path("cves/<str:cve_id>/machines/", CveMachinesView.as_view(), name="cve-machines"),
    path("notices/<str:notice_id>/machines/", NoticeMachinesView.as_view(), name="notice-machines"),
    path("machines/<str:ident>/exposure/", MachineExposureView.as_view(), name="machine-exposure"),
]
