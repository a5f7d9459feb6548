from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "uus.jobs"
    label = "jobs"
