from django.apps import AppConfig


class ExposureConfig(AppConfig):
    name = "uus.exposure"
    label = "exposure"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from . import receivers  # noqa: F401  (connects to catalog and inventory signals)
        from .machine_counts import on_post_migrate, on_pre_migrate

        # the machine count triggers are dropped while migrations run and come back after them
        pre_migrate.connect(on_pre_migrate, sender=self, dispatch_uid="uus.exposure.machine_counts.pre")
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="uus.exposure.machine_counts.post")
