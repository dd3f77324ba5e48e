from agents.runtime import appconfig


class SanitationAgentConfig(appconfig.AgentAppConfig):
    name = "agents.sanitation"
    label = "agent_sanitation"
    verbose_name = "Sanitation agent"
    url_prefix = "sanitation"
    api_urls = "agents.sanitation.api.urls"
    console_urls = "agents.sanitation.urls"
