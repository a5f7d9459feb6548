from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "uus.audit"
    label = "audit"
