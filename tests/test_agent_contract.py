"""Every registered agent keeps the one agent contract (agents/runtime/contract.py): agent.py declares and maps
results to KPIs but writes nothing itself, settings have their defaults in conf.py, every model is in the
admin, every mounted route has a permission-matrix row. And the checks do catch a broken agent."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import models

from agents.runtime import contract
from agents.runtime.base import Agent
from agents.runtime.registry import agents_all


def _app_of(agent: Agent):
    return apps.get_containing_app_config(type(agent).__module__)


@pytest.mark.parametrize("agent", agents_all(), ids=lambda a: a.name)
def test_agent_keeps_the_contract(agent):
    assert contract.violations(agent, _app_of(agent)) == []


def test_every_agent_app_registers_an_agent():
    """An agent app without a registered agent (or an agent outside an app) would escape the checks above."""
    agent_apps = {_app_of(a).label for a in agents_all()}
    mounted = {cfg.label for cfg in apps.get_app_configs() if cfg.name.startswith("agents.") and cfg.label != "agents_core"}
    assert agent_apps == mounted


# --- the checks fail for a broken agent ---------------------------------------------------------------------

BROKEN_AGENT_PY = '''
from agents.sanitation.models import Truck

class Broken:
    def run(self, ctx):
        Truck.objects.filter(pk=1).update(in_service=False)
        Truck.objects.create(code="T9")
        truck = Truck.objects.get(pk=2)
        truck.save()
        return Truck.objects.filter(in_service=True).count()  # a read: fine
'''


def test_orm_writes_in_agent_py_are_reported():
    found = contract.orm_writes(BROKEN_AGENT_PY)
    assert [line.split(":")[1] for line in found] == ["6", "7", "9"], found
    assert "Truck.objects.filter.update()" in found[0]
    assert contract.orm_writes("def run(ctx):\n    return service_call(run=ctx.run)\n") == []


def test_orm_writes_outside_services_are_reported(tmp_path):
    """A view, task or command writes through a service; the services, migrations and tests may write."""
    write = "def f(user):\n    Token.objects.filter(user=user).delete()\n    picture.save('x.jpg')\n"
    for relative in ("views.py", "management/commands/token.py", "services/tokens.py", "services.py",
                     "migrations/0002_data.py", "tests/test_views.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(write)
    found = contract.app_orm_writes(_FakeApp("agents.fake", str(tmp_path)))
    assert found == [
        "management/commands/token.py:2: Token.objects.filter.delete() writes through the ORM; call a service",
        "views.py:2: Token.objects.filter.delete() writes through the ORM; call a service",
    ]


def test_a_model_missing_from_the_admin_is_reported():
    site = admin.AdminSite(name="contract-test")
    bus = apps.get_app_config("agent_bus")
    missing = contract.admin_missing(bus, site=site)
    assert "agent_bus.Feed is not in the admin" in missing and len(missing) == len(list(bus.get_models()))
    for model in bus.get_models():
        site.register(model)
    assert contract.admin_missing(bus, site=site) == []


class _FakeApp:
    """Enough of an AppConfig for the settings and route checks."""

    def __init__(self, name: str, path: str = "", **attrs):
        self.name, self.path = name, path
        self.__dict__.update(attrs)


def test_a_missing_settings_module_or_an_unnamed_setting_is_reported():
    class Nameless(Agent):
        name = "nameless"

    assert contract.settings_missing(_FakeApp("agents.runtime.tests"), Nameless()) == [
        "agents.runtime.tests has no conf.py (its settings and their defaults)"]
    problems = contract.settings_missing(_FakeApp("agents.bus"), Nameless())
    assert len(problems) == 1 and "setting_names" in problems[0] and "BUS_FEED_MAX_UPLOAD_BYTES" in problems[0]


def test_a_route_without_a_matrix_row_is_reported(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_permissions.py").write_text(
        'rows = [("GET", "/bus/", console), ("GET", f"/bus/plans/{p}/", {"crew": 403})]\n')
    app = _FakeApp("agents.bus", str(tmp_path), url_prefix="bus", api_urls=None, console_urls="agents.bus.urls")
    missing = contract.matrix_missing(app)
    assert "route bus/ has no row in agents.bus's permission matrix" not in missing
    assert "route bus/plans/<int:pk>/ has no row in agents.bus's permission matrix" not in missing
    assert "route bus/plans/<int:pk>/export.csv has no row in agents.bus's permission matrix" in missing
    assert len(missing) == len(contract.app_routes(app)) - 2


def test_a_fixed_api_route_without_a_matrix_row_is_reported(tmp_path):
    """A route the agent declares at a fixed path (`fixed_api_urls`) is its route like the others."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_permissions.py").write_text('rows = [("GET", "/api/roads/photos/", api)]\n')
    app = _FakeApp("agents.roads", str(tmp_path), url_prefix="roads", api_urls=None, console_urls=None,
                   fixed_api_urls={"inspections": "agents.roads.api.upload_urls"})
    assert contract.app_routes(app) == ["api/inspections/photos/"]
    assert contract.matrix_missing(app) == [
        "route api/inspections/photos/ has no row in agents.roads's permission matrix"]
    (tmp_path / "tests" / "test_permissions.py").write_text('rows = [("POST", "/api/inspections/photos/", api)]\n')
    assert contract.matrix_missing(app) == []


def test_the_roads_upload_path_is_mounted_from_its_declaration():
    """city_ops/urls.py names no agent: the field app's path comes from the roads app's `fixed_api_urls`,
    and no two API or console mounts of the project share a path (one would hide the other)."""
    from django.urls import get_resolver, resolve

    import city_ops.urls

    assert "agents.roads" not in Path(city_ops.urls.__file__).read_text(encoding="utf-8")
    assert resolve("/api/inspections/photos/").func.view_class is resolve("/api/roads/photos/").func.view_class
    assert "api/inspections/photos/" in contract.app_routes(apps.get_app_config("agent_roads"))
    for patterns in (city_ops.urls.api_patterns, get_resolver().url_patterns):
        mounts = [str(p.pattern) for p in patterns]
        assert len(mounts) == len(set(mounts)), sorted(m for m in mounts if mounts.count(m) > 1)


def test_the_real_bus_matrix_covers_what_the_fake_one_misses():
    """The same check on the real app passes: its tests hold a row for each of those routes."""
    assert contract.matrix_missing(apps.get_app_config("agent_bus")) == []


def test_composite_key_models_are_not_asked_for():
    reading = apps.get_model("agent_flood", "Reading")
    assert isinstance(reading._meta.pk, models.CompositePrimaryKey)
    assert not admin.site.is_registered(reading)
    assert contract.admin_missing(apps.get_app_config("agent_flood")) == []



def test_a_broken_tool_declaration_is_reported():
    """A tool named outside its agent, with a schema that is not one, or a write that names no roles and
    says nothing of what it will change: each is a contract violation."""
    from city_ops.copilot.tools import Tool, ToolResult, args_schema

    def handler(*, user, args):
        return ToolResult(data={}, summary="")

    class Toolish(Agent):
        name = "toolish"
        tools = (
            Tool(name="other.read", description="reads", schema=args_schema({}), handler=handler),
            Tool(name="toolish.bad_schema", description="reads", schema={"type": "object", "properties": 3},
                 handler=handler),
            Tool(name="toolish.write", description="writes", schema=args_schema({}), handler=handler, writes=True,
                 roles=()),
            Tool(name="toolish.fine", description="reads", schema=args_schema({"n": {"type": "integer"}}),
                 handler=handler),
        )

    problems = contract.tools_invalid(Toolish())
    assert len(problems) == 3, problems
    assert "'other.read' must be named 'toolish.<verb>'" in problems[0]
    assert "toolish.bad_schema: invalid JSON schema" in problems[1]
    assert "toolish.write writes" in problems[2]


def test_run_tools_take_their_schema_from_run_params():
    """`bus.plan` offers the bus agent's own `layover_min` range: generated from the declaration, not copied."""
    from agents.runtime.registry import agent_get

    bus = agent_get("bus")
    plan = next(t for t in bus.tools if t.name == "bus.plan")
    layover = next(p for p in bus.run_params if p.name == "layover_min")
    assert plan.schema["properties"]["layover_min"] == {"type": "number", "minimum": layover.min,
                                                        "maximum": layover.max, "description": layover.help}
    assert plan.writes and set(plan.schema["properties"]) == {"date", "layover_min"}
