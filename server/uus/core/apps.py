from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "uus.core"
    label = "core"
