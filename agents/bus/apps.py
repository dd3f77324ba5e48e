from agents.runtime import appconfig


class BusAgentConfig(appconfig.AgentAppConfig):
    name = "agents.bus"
    label = "agent_bus"
    verbose_name = "Bus agent"
    url_prefix = "bus"
    api_urls = "agents.bus.api.urls"
    console_urls = "agents.bus.urls"

    def ready(self) -> None:
        super().ready()
        from . import signals  # noqa: F401  (the poll schedule and the positions' partitions, after migrate)
