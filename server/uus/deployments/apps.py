from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "uus.deployments"
    label = "deployments"
