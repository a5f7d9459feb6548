from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "uus.approvals"
    label = "approvals"
