from django.apps import AppConfig


class DemoAgentConfig(AppConfig):
    name = "agents.demo"
    label = "agent_demo"
    verbose_name = "Demo agent (proves the runtime)"

    def ready(self) -> None:
        from . import agent  # noqa: F401  (registers the agent)
