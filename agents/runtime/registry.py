"""The agent registry: one instance per agent name, filled by each agent app's AppConfig.ready()."""
from __future__ import annotations

from .base import Agent, Asset

_agents: dict[str, Agent] = {}


class UnknownAgentError(KeyError):
    def __str__(self) -> str:
        return f"unknown agent {self.args[0]!r}; registered: {', '.join(sorted(_agents)) or 'none'}"


def register(agent_cls: type[Agent]) -> type[Agent]:
    """Class decorator: register an agent under its name (re-registering the same class is a no-op)."""
    existing = _agents.get(agent_cls.name)
    if existing is not None and type(existing) is not agent_cls:
        raise ValueError(f"two agents named {agent_cls.name!r}: {type(existing)} and {agent_cls}")
    _agents[agent_cls.name] = agent_cls()
    return agent_cls


def agent_get(name: str) -> Agent:
    try:
        return _agents[name]
    except KeyError:
        raise UnknownAgentError(name) from None


def agent_names() -> list[str]:
    return sorted(_agents)


def agents_all() -> list[Agent]:
    return [_agents[n] for n in agent_names()]


def agents_reacting_to(kind: str) -> list[Agent]:
    return [a for a in agents_all() if kind in a.events]


def assets_in_area(*, area, exclude: str | None = None) -> list[Asset]:
    """Every agent's assets inside `area`: how one agent asks what lies in a polygon without importing
    another agent's code."""
    found: list[Asset] = []
    for agent in agents_all():
        if agent.name != exclude:
            found.extend(agent.assets_in_area(area=area))
    return found
