from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "uus.directory"
    label = "directory"
    verbose_name = "Directory (LDAP)"
