from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "uus.catalog"
    label = "catalog"
