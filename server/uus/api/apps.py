from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "uus.api"
    label = "api"
