"""The base of every agent's AppConfig. Agent apps import this module, not the class: Django picks an app's
config among the AppConfig classes its apps.py holds, and an imported base would be a second candidate."""
import importlib

from django.apps import AppConfig


class AgentAppConfig(AppConfig):
    """`ready()` imports `<app>.agent`, whose `@register` puts the agent in the registry; an app that needs
    more at start-up (signals, a codec) overrides `ready()` and calls this one. `url_prefix` mounts
    `api_urls` under /api/<prefix>/ and `console_urls` under /<prefix>/ (city_ops/urls.py)."""

    url_prefix: str | None = None
    api_urls: str | None = None
    console_urls: str | None = None

    def ready(self) -> None:
        importlib.import_module(f"{self.name}.agent")
