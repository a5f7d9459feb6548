from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "uus.accounts"
    label = "accounts"
