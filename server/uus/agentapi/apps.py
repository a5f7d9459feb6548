from django.apps import AppConfig


class AgentApiConfig(AppConfig):
    name = "uus.agentapi"
    label = "agentapi"
    verbose_name = "Agent protocol v1"
