from agents.core.apps import AgentAppConfig


class SanitationAgentConfig(AgentAppConfig):
    name = "agents.sanitation"
    label = "agent_sanitation"
    verbose_name = "Sanitation agent"
    url_prefix = "sanitation"
    api_urls = "agents.sanitation.api.urls"
    console_urls = "agents.sanitation.urls"
