from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "uus.inventory"
    label = "inventory"
