"""What an agent says it `reads` (shown in the docs and the console) names real models by their app label."""
from __future__ import annotations

import pytest
from django.apps import apps

from agents.runtime.registry import agents_all


@pytest.mark.parametrize("agent", agents_all(), ids=lambda a: a.name)
def test_every_declared_read_is_an_installed_model(agent):
    # `bus.Feed` once stood where the app label is `agent_bus`: a name that looks right and resolves to nothing.
    for label in agent.reads:
        assert apps.get_model(label), label
