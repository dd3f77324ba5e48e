from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "city_ops.console"
    label = "console"
    verbose_name = "Console"
