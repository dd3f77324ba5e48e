from django.apps import AppConfig


class AgentsCoreConfig(AppConfig):
    name = "agents.core"
    label = "agents_core"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        # Each agent app registers itself in its own AppConfig.ready(); the signals wire Celery metrics
        # and the beat schedule.
        from . import signals  # noqa: F401
