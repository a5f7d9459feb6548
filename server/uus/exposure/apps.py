from django.apps import AppConfig


class ExposureConfig(AppConfig):
    name = "uus.exposure"
    label = "exposure"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects to catalog and inventory signals)
