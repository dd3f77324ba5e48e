"""Every tool the copilot can call, discovered: each registered agent's `tools`, and the `TOOLS` of every
installed app's `copilot_tools` module (the platform's apps: city, work orders; a new app brings its own by
adding that one module). An agent's tools are named after the agent, an app's after its label."""
from __future__ import annotations

import importlib
import importlib.util
from functools import cache

from django.apps import apps

from agents.runtime.registry import agents_all

from .tools import Tool, dotted_name, tool_problems


class UnknownToolError(KeyError):
    def __str__(self) -> str:
        return f"unknown tool {self.args[0]!r}"


def _app_tools() -> list[tuple[str, Tool]]:
    found = []
    for cfg in apps.get_app_configs():
        module_name = f"{cfg.name}.copilot_tools"
        if importlib.util.find_spec(module_name) is not None:
            found += [(cfg.label, tool) for tool in importlib.import_module(module_name).TOOLS]
    return found


@cache
def tools_by_name() -> dict[str, Tool]:
    """Name -> tool, checked once: a broken declaration stops the copilot at start, not a request later."""
    declared = [(agent.name, tool) for agent in agents_all() for tool in agent.tools] + _app_tools()
    problems = [p for prefix, tool in declared for p in tool_problems(tool, prefix=prefix)]
    names = [tool.name for _, tool in declared]
    problems += [f"tool {n} is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise ValueError("copilot tools: " + "; ".join(problems))
    return {tool.name: tool for _, tool in sorted(declared, key=lambda d: d[1].name)}


def tool_get(name: str) -> Tool:
    """A tool by its dotted name, or by its name on the wire (`bus__plan`)."""
    try:
        return tools_by_name()[dotted_name(name)]
    except KeyError:
        raise UnknownToolError(name) from None


def tools_for(user) -> list[Tool]:
    """The tools the user's roles allow: what a model is offered on their behalf."""
    return [tool for tool in tools_by_name().values() if tool.allows(user)]
