from django.apps import AppConfig


class CopilotConfig(AppConfig):
    name = "city_ops.copilot"
    label = "copilot"
    verbose_name = "Copilot"
