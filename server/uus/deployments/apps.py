from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "uus.deployments"
    label = "deployments"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (catalog changes: announce and decide new security updates)
