from django.apps import AppConfig


class SanitationAgentConfig(AppConfig):
    name = "agents.sanitation"
    label = "agent_sanitation"
    verbose_name = "Sanitation agent"
    url_prefix = "sanitation"  # mounts api_urls under /api/sanitation/ and console_urls under /sanitation/
    api_urls: str | None = "agents.sanitation.api.urls"
    console_urls: str | None = "agents.sanitation.urls"

    def ready(self) -> None:
        # The agent module registers itself; an agent still being built may not have one yet.
        import importlib
        import importlib.util

        if importlib.util.find_spec(f"{self.name}.agent") is not None:
            importlib.import_module(f"{self.name}.agent")
