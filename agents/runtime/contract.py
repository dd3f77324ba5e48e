"""The agent contract as checks (tests/test_agent_contract.py runs them over the registry). Each check
returns what is wrong, one line per problem, so a test can also show that it catches a broken agent.

What every agent app holds: `agent.py` with declarations and the mapping from a result to KPIs, whose
`run()` makes one call to a service (so it writes nothing through the ORM itself), and no module outside
its services writes through a model manager; `conf.py` with its
settings' defaults (`DEFAULTS`, read through `conf(name)`), named by the agent's `setting_names`;
`admin.py` registering every model the app owns; a permission-matrix row in its tests for every
route it mounts; and copilot tools (`tools`) named `<agent>.<verb>` with a valid argument schema, a write
naming the roles allowed and the sentence its proposal shows."""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

from django.apps import AppConfig
from django.contrib import admin
from django.db.models import CompositePrimaryKey
from django.urls import URLPattern, URLResolver, include

# Model manager and instance calls that write.
ORM_WRITES = frozenset({"create", "get_or_create", "update_or_create", "update", "delete", "save",
                        "bulk_create", "bulk_update"})
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def _chain(node: ast.AST) -> list[str]:
    """The attribute and call names of an expression such as `Truck.objects.filter(pk=1).update`."""
    names = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names[::-1]
        else:
            return names[::-1]


def orm_writes(source: str, *, filename: str = "agent.py", any_save: bool = True) -> list[str]:
    """ORM writes in a module's source: a write call on a chain through `.objects`, or any `.save()` (only
    in agent.py with `any_save`: elsewhere `.save()` is also a picture's or a file's)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ORM_WRITES:
            chain = _chain(node.func)
            if "objects" in chain or (any_save and node.func.attr == "save"):
                found.append(f"{filename}:{node.lineno}: {'.'.join(chain)}() writes through the ORM; "
                             "call a service")
    return found


def admin_missing(app: AppConfig, *, site: admin.AdminSite = admin.site) -> list[str]:
    """Models the app owns that its admin.py neither registers nor shows inline on a registered model's page.
    Models keyed on a composite primary key are left out: Django's admin cannot show them."""
    inline = {i.model for model_admin in site._registry.values() for i in model_admin.inlines}
    return [f"{m._meta.label} is not in the admin" for m in app.get_models()
            if not site.is_registered(m) and m not in inline and not isinstance(m._meta.pk, CompositePrimaryKey)]


def settings_missing(app: AppConfig, agent) -> list[str]:
    """The app's conf.py: its DEFAULTS, a `conf` reader, and the agent naming exactly those settings."""
    try:
        module = importlib.import_module(f"{app.name}.conf")
    except ModuleNotFoundError:
        return [f"{app.name} has no conf.py (its settings and their defaults)"]
    problems = []
    if not isinstance(getattr(module, "DEFAULTS", None), dict):
        problems.append(f"{app.name}.conf has no DEFAULTS dict")
    elif tuple(agent.setting_names) != tuple(module.DEFAULTS):
        problems.append(f"{agent.name}.setting_names {tuple(agent.setting_names)} != its conf.DEFAULTS "
                        f"{tuple(module.DEFAULTS)}")
    if not callable(getattr(module, "conf", None)):
        problems.append(f"{app.name}.conf has no conf(name) reader")
    return problems


def _routes(patterns, prefix: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def app_routes(app: AppConfig) -> list[str]:
    """The routes the app mounts (city_ops/urls.py: `api_urls` under api/<prefix>/, `console_urls` under
    <prefix>/, each of `fixed_api_urls` under api/<mount>/), e.g. 'bus/plans/<int:pk>/'."""
    prefix = getattr(app, "url_prefix", None)
    mounts = [(f"api/{prefix}/", getattr(app, "api_urls", None)), (f"{prefix}/", getattr(app, "console_urls", None))]
    mounts = [(mount, module) for mount, module in mounts if prefix and module]
    mounts += [(f"api/{mount}/", module) for mount, module in getattr(app, "fixed_api_urls", {}).items()]
    routes = []
    for mount, module in mounts:
        routes += _routes(include(module)[0].urlpatterns, mount)
    return routes


def route_regex(route: str) -> re.Pattern:
    """A route as a regex over URLs without the leading slash (int converters match digits)."""
    parts = re.split(r"(<\w+:\w+>|<\w+>)", route)
    return re.compile("".join(
        (r"\d+" if part.startswith("<int:") else r"[^/]+") if part.startswith("<") else re.escape(part)
        for part in parts))


def _sample_url(node: ast.AST) -> str | None:
    """A matrix row's URL: a string, or an f-string whose placeholders (ids) become '1'."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "1" for v in node.values)
    return None


def matrix_urls(source: str) -> set[str]:
    """URLs of the permission-matrix rows written in a test module: tuples (METHOD, url, {role: status})."""
    urls = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Tuple) and len(node.elts) == 3 and isinstance(node.elts[0], ast.Constant)
                and node.elts[0].value in HTTP_METHODS):
            url = _sample_url(node.elts[1])
            if url is not None:
                urls.add(url.split("?")[0].lstrip("/"))
    return urls


def app_matrix_urls(app: AppConfig) -> set[str]:
    """The matrix rows in the app's tests (tests/*.py)."""
    urls = set()
    for path in sorted((Path(app.path) / "tests").glob("*.py")):
        urls |= matrix_urls(path.read_text(encoding="utf-8"))
    return urls


def routes_uncovered(routes: list[str], urls: set[str]) -> list[str]:
    """Routes that no matrix URL falls under."""
    return [r for r in routes if not any(route_regex(r).fullmatch(u) for u in urls)]


def matrix_missing(app: AppConfig) -> list[str]:
    return [f"route {r} has no row in {app.name}'s permission matrix"
            for r in routes_uncovered(app_routes(app), app_matrix_urls(app))]


def tools_invalid(agent) -> list[str]:
    """What is wrong with the agent's copilot tool declarations (city_ops.copilot.tools.tool_problems)."""
    from city_ops.copilot.tools import Tool, tool_problems

    return [p for tool in agent.tools
            for p in ([f"{agent.name}.tools holds {tool!r}, not a Tool"] if not isinstance(tool, Tool)
                      else tool_problems(tool, prefix=agent.name))]


def agent_module_writes(module: ModuleType) -> list[str]:
    return orm_writes(inspect.getsource(module), filename=Path(module.__file__).name)


# Where an agent app may write through a manager: its services, and what Django and the tests own.
_WRITERS = frozenset({"services", "services.py", "migrations", "tests", "agent.py"})


def app_orm_writes(app: AppConfig) -> list[str]:
    """Writes through `.objects` in the app's modules outside its services (views, API views, tasks, commands,
    signals, selectors, copilot handlers call a service instead; agent.py has its own, stricter check)."""
    root = Path(app.path)
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if not _WRITERS.isdisjoint(relative.parts):
            continue
        found += orm_writes(path.read_text(encoding="utf-8"), filename=str(relative), any_save=False)
    return found


def violations(agent, app: AppConfig) -> list[str]:
    """Everything in which the agent's app breaks the contract."""
    return (agent_module_writes(importlib.import_module(type(agent).__module__)) + app_orm_writes(app)
            + admin_missing(app)
            + settings_missing(app, agent) + matrix_missing(app) + tools_invalid(agent))
