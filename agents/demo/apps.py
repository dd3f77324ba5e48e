from agents.core.apps import AgentAppConfig


class DemoAgentConfig(AgentAppConfig):
    name = "agents.demo"
    label = "agent_demo"
    verbose_name = "Demo agent (proves the runtime)"
