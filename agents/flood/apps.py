from agents.runtime import appconfig


class FloodAgentConfig(appconfig.AgentAppConfig):
    name = "agents.flood"
    label = "agent_flood"
    verbose_name = "Flood agent"
    url_prefix = "flood"
    api_urls = "agents.flood.api.urls"
    console_urls = "agents.flood.urls"

    def ready(self) -> None:
        super().ready()
        from . import signals  # noqa: F401  (the readings' partitions, after migrate)
