from agents.runtime import appconfig


class DemoAgentConfig(appconfig.AgentAppConfig):
    name = "agents.demo"
    label = "agent_demo"
    verbose_name = "Demo agent (proves the runtime)"
