from django.apps import AppConfig


class BusAgentConfig(AppConfig):
    name = "agents.bus"
    label = "agent_bus"
    verbose_name = "Bus agent"
    url_prefix = "bus"  # mounts api_urls under /api/bus/ and console_urls under /bus/
    api_urls: str | None = "agents.bus.api.urls"
    console_urls: str | None = "agents.bus.urls"

    def ready(self) -> None:
        # The agent module registers itself; an agent still being built may not have one yet.
        import importlib
        import importlib.util

        if importlib.util.find_spec(f"{self.name}.agent") is not None:
            importlib.import_module(f"{self.name}.agent")
        from . import signals  # noqa: F401  (the GTFS-Realtime poll schedule, after migrate)
