from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "city_ops.core"
    label = "core"
    verbose_name = "Core: roles, audit, API clients"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
