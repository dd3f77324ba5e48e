"""The API under fuzzing and hostile inputs, served by a real gunicorn subprocess (`web_server_proc`), so that a
request that aborts the process shows as a dead worker instead of taking pytest down.

`make test` runs a bounded fuzz: CITY_OPS_FUZZ_BUDGET_S seconds in all (default 80), shared by the three roles.
`make fuzz` runs the same test with a larger budget and more examples per operation (docs/development/testing.md).
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import time
from dataclasses import dataclass, field

import hypothesis
import hypothesis.errors
import hypothesis.strategies
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.core.errors import SerializationNotPossible

from tests.fixtures import WebServerProcess

ROLES = ("dispatcher", "crew", "anonymous")
BUDGET_S = float(os.environ.get("CITY_OPS_FUZZ_BUDGET_S", "80"))
# Generated examples per operation and mode in each pass after the first (one each, so that every operation
# is reached early); passes repeat with new seeds until the budget is spent.
EXAMPLES = int(os.environ.get("CITY_OPS_FUZZ_EXAMPLES", "4"))
REQUEST_TIMEOUT_S = 90  # longer than gunicorn's worker timeout: a stuck request shows as a killed worker


@pytest.fixture
def tokens(users):
    """A DRF token per signed-in role (`Authorization: Token ...`): what a script uses, and no CSRF dance."""
    from rest_framework.authtoken.models import Token

    return {role: Token.objects.create(user=getattr(users, role)).key for role in ("dispatcher", "crew")}


def _headers(role: str, tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Token {tokens[role]}"} if role in tokens else {}


class _Stop(Exception):
    """The budget is spent or the server is down: no more examples."""


@dataclass
class FuzzReport:
    """Server errors and dead workers, one example kept per operation and symptom."""

    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: int = 0
    skipped: int = 0
    passes: int = 0

    def record(self, case, what: str) -> None:
        self.failures.setdefault((f"{case.method.upper()} {case.path}", what), case.as_curl_command())

    def text(self) -> str:
        return "\n".join(f"{op}: {what}\n    {curl}" for (op, what), curl in sorted(self.failures.items()))


def _takes_input(operation) -> bool:
    """Negative data needs something to make invalid; without inputs Hypothesis searches in vain."""
    return any(len(p) for p in (operation.path_parameters, operation.query, operation.headers)) or bool(
        list(operation.body))


def _send(case, *, server, headers, report) -> None:
    try:
        response = case.call(base_url=server.url, headers=headers, timeout=REQUEST_TIMEOUT_S)
    except SerializationNotPossible:  # a body type schemathesis cannot write (GTFS-RT protobuf)
        report.skipped += 1
        return
    except requests.ConnectionError as exc:  # the worker died under the request
        report.calls += 1
        report.record(case, f"connection lost ({type(exc).__name__})")
        raise _Stop from exc
    report.calls += 1
    if response.status_code >= 500:
        report.record(case, f"{response.status_code}: {response.text[:200]}")
    if not server.alive():
        report.record(case, "worker died")
        raise _Stop


def _ids_in(payload) -> list[int]:
    """The ids in a list answer: a page (`results`), a plain list, or a GeoJSON FeatureCollection."""
    if isinstance(payload, dict):
        payload = payload.get("results", payload.get("features", []))
    if not isinstance(payload, list):
        return []
    return [item["id"] for item in payload if isinstance(item, dict) and isinstance(item.get("id"), int)]


def _known_ids(operations, *, server, headers) -> dict[str, list[int]]:
    """Ids that exist, per `{id}` path, read from the list beside it (`/x/` or `/x.geojson` for `/x/{id}/...`):
    random integers nearly always miss, and a 404 reaches no deeper than the lookup."""
    known = {}
    for operation in operations:
        if "{id}" not in operation.path:
            continue
        collection = operation.path.split("{id}")[0]
        for url in (collection, collection.rstrip("/") + ".geojson"):
            response = requests.get(f"{server.url}{url}", headers=headers, timeout=REQUEST_TIMEOUT_S)
            if response.ok and response.headers.get("content-type", "").startswith("application/json"):
                known[operation.path] = _ids_in(response.json())[:3]
                break
    return known


def _strategy(operation, mode, known_ids: list[int]):
    strategy = operation.as_strategy(generation_mode=mode)
    return strategy if not known_ids else hypothesis.strategies.one_of(
        strategy, *(operation.as_strategy(generation_mode=mode, path_parameters={"id": i}) for i in known_ids))


def _fuzz_operation(operation, mode, *, known_ids, examples, seed, server, headers, deadline, report) -> None:
    @hypothesis.settings(max_examples=examples, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.seed(seed)
    @hypothesis.given(case=_strategy(operation, mode, known_ids))
    def one(case):
        if time.monotonic() > deadline:
            raise _Stop
        _send(case, server=server, headers=headers, report=report)

    try:
        one()
    except hypothesis.errors.Unsatisfiable:  # no invalid value exists for its inputs
        pass


def _coverage_cases(operations) -> list:
    """Schemathesis's coverage phase (boundary values, wrong types, missing and extra parameters: where NULs
    and integers past 2**63 come from), deterministic; taken one operation after another, round robin, so
    that a short budget still reaches every operation."""
    per_operation = [
        operation.schema.iter_coverage_cases(
            operation, generation_modes=list(GenerationMode),
            generation_config=operation.schema.config.generation_for(operation=operation, phase="coverage"))
        for operation in operations]
    rounds = itertools.zip_longest(*per_operation)
    return [case for cases in rounds for case in cases if case is not None]


def fuzz(operations, *, known_ids, server, headers, budget_s: float) -> FuzzReport:
    """The coverage phase, then passes over every operation with generated data, valid then invalid, until
    the budget is spent."""
    deadline = time.monotonic() + budget_s
    report = FuzzReport()
    try:
        for case in _coverage_cases(operations):
            if time.monotonic() > deadline:
                raise _Stop
            _send(case, server=server, headers=headers, report=report)
        while True:
            for operation in operations:
                modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if _takes_input(operation) else [])
                for mode in modes:
                    _fuzz_operation(operation, mode, known_ids=known_ids.get(operation.path, []),
                                    examples=EXAMPLES if report.passes else 1, seed=report.passes,
                                    server=server, headers=headers, deadline=deadline, report=report)
            report.passes += 1
    except _Stop:
        pass
    return report


@pytest.mark.slow
@pytest.mark.fuzz
def test_fuzz_api_as_each_role(demo_city, web_server_proc, tokens):
    """Schemathesis against the served OpenAPI schema, on the demo city's data, as a dispatcher, a crew member
    and anonymous: no 5xx, no dead worker. One server for the three roles (a start and a flush cost seconds)."""
    dispatcher = _headers("dispatcher", tokens)
    schema = schemathesis.openapi.from_url(f"{web_server_proc.url}/api/schema/?format=json",
                                           headers=dispatcher, timeout=60)
    operations = [result.ok() for result in schema.get_all_operations()]
    known_ids = _known_ids(operations, server=web_server_proc, headers=dispatcher)
    failures = []
    for role in ROLES:
        report = fuzz(operations, known_ids=known_ids, server=web_server_proc, headers=_headers(role, tokens),
                      budget_s=BUDGET_S / len(ROLES))
        print(f"fuzz as {role}: {report.calls} requests, {report.passes} full passes after the coverage phase, "
              f"{report.skipped} skipped (bodies schemathesis cannot write), {len(report.failures)} failing")
        if report.failures:
            failures.append(f"as {role}:\n{report.text()}")
        if not web_server_proc.alive():
            break
    assert web_server_proc.alive(), f"a worker died:\n{web_server_proc.log_tail()}"
    assert not failures, "server errors:\n" + "\n".join(failures)


@pytest.mark.slow
def test_alive_check_sees_a_worker_that_aborted(web_server_proc):
    """The check the fuzz relies on is real: a worker dying of SIGABRT (what "stack smashing detected" does)
    turns `alive()` false, although gunicorn boots a replacement and the master runs on."""
    assert web_server_proc.alive()
    os.kill(web_server_proc.worker_pids()[0], signal.SIGABRT)
    deadline = time.monotonic() + 20
    while web_server_proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not web_server_proc.alive()
    assert web_server_proc.proc.poll() is None  # the master lives: a check on it alone would have passed


# The inputs issue 14 found crashing or failing the server; each must get a 4xx and leave every worker alive.
HOSTILE = [
    ("GET", "/api/city/roads.geojson?bbox=0,0,1e200,1", None),
    ("GET", "/api/city/roads.geojson?bbox=nan,0,1,1", None),
    ("GET", "/api/city/roads.geojson?bbox=0,0,inf,1", None),
    ("POST", "/api/city/closures.geojson",
     {"geometry": {"type": "LineString", "coordinates": [[24.94, 60.17], [1e200, 60.17]]}, "reason": "fuzz"}),
    ("POST", "/api/city/closures.geojson",
     {"geometry": {"type": "LineString", "coordinates": [["nan", 60.17], [24.95, "nan"]]}, "reason": "fuzz"}),
    ("POST", "/api/city/closures.geojson",
     {"geometry": {"type": "GeometryCollection", "geometries": []}, "reason": "fuzz"}),
    ("POST", "/api/city/route/", {"origin": [24.94, 60.17], "destination": [1e308, 60.17]}),
    ("GET", "/api/agents/runs/?agent=%00", None),
    ("POST", "/api/agents/runs/", {"agent": "demo", "params": {"\u0000": 1}}),
    ("GET", "/api/agents/runs/?limit=9223372036854775808", None),
    ("POST", "/api/agents/runs/", {"agent": "sanitation", "params": {"time_limit": "abc"}}),
]


@pytest.fixture(scope="class")
def shared_web_server(django_db_setup, django_db_blocker):
    """One gunicorn for a class of tests (a start costs seconds), with a grid city's roads (a route needs a
    network to snap to) and a dispatcher's token committed; the tables are emptied afterwards, as
    `transactional_db` does, so what the requests wrote goes too."""
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from city_ops.core.testing import role_users_create
    from fixtures.demo_city import synthetic_city_build

    with django_db_blocker.unblock():
        # pytest-django creates the test database only when a collected test asks for one (the class's
        # django_db mark does); never write to, or flush, the database the settings name.
        assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]
        synthetic_city_build(scale=1)
        token = Token.objects.create(user=role_users_create().dispatcher).key
    server = WebServerProcess().start()
    yield server, {"Authorization": f"Token {token}"}
    server.stop()
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.mark.slow
@pytest.mark.django_db  # asks pytest-django for the test database that `shared_web_server` writes to
class TestHostileInputs:
    @pytest.mark.parametrize("method,path,body", HOSTILE,
                             ids=[f"{m} {p} {json.dumps(b)[:50]}" for m, p, b in HOSTILE])
    def test_refused_and_the_server_lives(self, method, path, body, shared_web_server):
        server, headers = shared_web_server
        if not server.alive():  # an earlier input killed a worker: judge this one on a fresh server
            server.stop()
            server.start()
        try:
            response = requests.request(method, f"{server.url}{path}", json=body, headers=headers,
                                        timeout=REQUEST_TIMEOUT_S)
        except requests.ConnectionError:
            response = None
        assert server.alive(), f"a worker died:\n{server.log_tail()}"
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
