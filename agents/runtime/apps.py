from django.apps import AppConfig


class AgentRuntimeConfig(AppConfig):
    name = "agents.runtime"
    # The label is the one the package had when it was `agents.core`: its tables, migrations and
    # content types carry it, and renaming it would rewrite them for nothing.
    label = "agents_core"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        # Each agent app registers itself in its own AppConfig.ready(); the signals wire Celery metrics
        # and the beat schedule.
        from . import signals  # noqa: F401
