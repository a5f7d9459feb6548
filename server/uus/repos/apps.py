from django.apps import AppConfig


class ReposConfig(AppConfig):
    name = "uus.repos"
    label = "repos"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (catalog syncs and request hosts)
