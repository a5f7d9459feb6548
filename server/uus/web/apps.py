from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "uus.web"
    label = "web"
