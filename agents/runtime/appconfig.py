"""The base of every agent's AppConfig. Agent apps import this module, not the class: Django picks an app's
config among the AppConfig classes its apps.py holds, and an imported base would be a second candidate."""
import importlib

from django.apps import AppConfig


class AgentAppConfig(AppConfig):
    """`ready()` imports `<app>.agent`, whose `@register` puts the agent in the registry; an app that needs
    more at start-up (signals, a codec) overrides `ready()` and calls this one. `url_prefix` mounts
    `api_urls` under /api/<prefix>/ and `console_urls` under /<prefix>/ (city_ops/urls.py).

    `fixed_api_urls` ({mount: urls module}) mounts API routes under /api/<mount>/ instead, for a path that
    must not move with `url_prefix` because devices outside are configured with it (the roads agent's
    /api/inspections/photos/ on the crews' phones). They are the agent's routes like the others: the
    contract asks a permission-matrix row for each, and no two mounts of the project may share a path."""

    url_prefix: str | None = None
    api_urls: str | None = None
    console_urls: str | None = None
    fixed_api_urls: dict[str, str] = {}

    def ready(self) -> None:
        importlib.import_module(f"{self.name}.agent")
