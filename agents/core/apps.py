import importlib

from django.apps import AppConfig


class AgentsCoreConfig(AppConfig):
    name = "agents.core"
    label = "agents_core"
    verbose_name = "Agent runtime"

    def ready(self) -> None:
        # Each agent app registers itself in its own AppConfig.ready(); the signals wire Celery metrics
        # and the beat schedule.
        from . import signals  # noqa: F401


class AgentAppConfig(AppConfig):
    """The base of every agent's app: `ready()` imports `<app>.agent`, whose `@register` puts the agent in
    the registry. An app that needs more at start-up (signals, a codec) overrides `ready()` and calls this
    one. `url_prefix` mounts `api_urls` under /api/<prefix>/ and `console_urls` under /<prefix>/."""

    url_prefix: str | None = None
    api_urls: str | None = None
    console_urls: str | None = None

    def ready(self) -> None:
        importlib.import_module(f"{self.name}.agent")
