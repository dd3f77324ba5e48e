from django.apps import AppConfig


class FloodAgentConfig(AppConfig):
    name = "agents.flood"
    label = "agent_flood"
    verbose_name = "Flood agent"
    url_prefix = "flood"  # mounts api_urls under /api/flood/ and console_urls under /flood/
    api_urls: str | None = "agents.flood.api.urls"
    console_urls: str | None = "agents.flood.urls"

    def ready(self) -> None:
        # The agent module registers itself; an agent still being built may not have one yet.
        import importlib
        import importlib.util

        if importlib.util.find_spec(f"{self.name}.agent") is not None:
            importlib.import_module(f"{self.name}.agent")
