"""What operators watch: /healthz (database, Redis, workers), /metrics (requests, agent runs, tasks) and
the audit log, on the real PostGIS and Redis."""
from __future__ import annotations

import time

import pytest
from django.contrib.gis.geos import Polygon
from prometheus_client.parser import text_string_to_metric_families

from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_create, agent_run_execute
from city_ops.core.health import WORKER_KEY, worker_heartbeat
from city_ops.core.metrics import TASK_KEY
from city_ops.core.models import AuditEntry
from city_ops.core.redis import redis_client

pytestmark = pytest.mark.django_db
OWN_REDIS_DB = 11  # not the test settings' 5/6: real test workers write heartbeats there


@pytest.fixture
def own_redis(settings):
    """A Redis database of these tests' own, so a Celery worker started by another test (which writes its
    heartbeat every 20 s) cannot make "no worker" look healthy, and task counters start at zero."""
    settings.REDIS_URL = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{OWN_REDIS_DB}"
    redis_client.cache_clear()
    r = redis_client()
    r.delete(WORKER_KEY, TASK_KEY)
    yield r
    r.delete(WORKER_KEY, TASK_KEY)
    redis_client.cache_clear()


def scrape(client) -> dict[tuple[str, tuple], float]:
    """GET /metrics and index every sample by (sample name, sorted labels)."""
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


# --- /healthz --------------------------------------------------------------------------------------------------


def test_healthz_degraded_without_workers_then_ok_with_a_heartbeat(client, own_redis):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] and body["checks"]["database"]["postgis"]
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["workers"] == {"ok": False, "seen": {}}

    worker_heartbeat(hostname="worker@ops-test", queues=["default", "planning", "realtime"])
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["workers"]["seen"] == {"worker@ops-test": ["default", "planning", "realtime"]}


def test_healthz_ignores_a_stale_heartbeat(client, own_redis):
    # A worker that stopped 10 minutes ago is not a worker: its last heartbeat is still in Redis.
    own_redis.hset(WORKER_KEY, "worker@gone", f"{time.time() - 600:.0f}|default")
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["checks"]["workers"]["seen"] == {}


def test_healthz_down_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there
    redis_client.cache_clear()
    try:
        resp = client.get("/healthz")
    finally:
        redis_client.cache_clear()
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "down"
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_healthz_is_get_only(client, own_redis):
    assert client.post("/healthz").status_code == 405


# --- /metrics --------------------------------------------------------------------------------------------------


def test_metrics_count_http_requests(client, own_redis):
    key = ("cityops_http_requests_total", (("method", "GET"), ("status", "200")))
    before = scrape(client).get(key, 0.0)
    client.get("/healthz")
    client.get("/healthz")
    after = scrape(client)[key]
    # The two health checks and the first scrape itself (counted once its response is done).
    assert after - before == 3
    not_found = ("cityops_http_requests_total", (("method", "GET"), ("status", "404")))
    n404 = scrape(client).get(not_found, 0.0)
    client.get("/no-such-page-for-metrics")
    assert scrape(client)[not_found] == n404 + 1


def test_metrics_show_agent_runs_by_outcome(client, demo_city, own_redis):
    run, _ = agent_run_create(agent="demo", trigger="manual", enqueue=False)
    assert agent_run_execute(run_id=run.pk, worker="ops-test").status == "succeeded"
    agent_run_create(agent="demo", trigger="manual", enqueue=False)
    samples = scrape(client)
    succeeded = ("cityops_agent_runs_total", (("agent", "demo"), ("status", "succeeded")))
    waiting = ("cityops_agent_runs_total", (("agent", "demo"), ("status", "pending")))
    assert samples[succeeded] == AgentRun.objects.filter(agent="demo", status="succeeded").count() == 1
    assert samples[waiting] == 1
    assert ("cityops_scrape_time", ()) in samples


def test_metrics_show_celery_tasks_by_state(client, own_redis):
    # A task run in this process still goes through Celery's tracer, whose signals count it in Redis,
    # exactly as a worker process does.
    from agents.runtime.tasks import reap_stuck_runs

    assert reap_stuck_runs.apply().get() == 0
    samples = scrape(client)
    counted = {labels: v for (name, labels), v in samples.items() if name == "cityops_tasks_total"}
    ours = {dict(labels)["state"]: v for labels, v in counted.items()
            if dict(labels)["task"] == "agents.reap_stuck_runs"}
    assert ours == {"SUCCESS": 1.0}
    secs = [v for (name, labels), v in samples.items()
            if name == "cityops_task_seconds_total" and dict(labels)["task"] == "agents.reap_stuck_runs"]
    assert len(secs) == 1 and 0 < secs[0] < 30


def test_metrics_survive_redis_being_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    redis_client.cache_clear()
    try:
        resp = client.get("/metrics")
    finally:
        redis_client.cache_clear()
    assert resp.status_code == 200 and b"cityops_agent_runs" in resp.content


# --- the audit log --------------------------------------------------------------------------------------------


def test_closure_writes_are_audited(demo_city, users):
    from city_ops.city.models import CityProfile
    from city_ops.city.services import closure_create, closure_lift

    x1, y1, x2, y2 = CityProfile.objects.get().bounds.extent
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    area = Polygon.from_bbox((cx - 0.002, cy - 0.001, cx + 0.002, cy + 0.001))
    area.srid = 4326
    closure = closure_create(geom=area, reason="water main burst", user=users.dispatcher)
    segments = sorted(closure.segments.values_list("id", flat=True))
    assert segments, "the box in the city centre should cover some road"

    opened = AuditEntry.objects.get(action="closure.opened")
    assert (opened.object_type, opened.object_id) == ("city.roadclosure", str(closure.pk))
    assert opened.actor == users.dispatcher and opened.actor_label == users.dispatcher.username
    assert opened.changes["reason"] == "water main burst"
    assert sorted(opened.changes["segments"]) == segments

    closure_lift(closure=closure, source_agent="flood")
    lifted = AuditEntry.objects.get(action="closure.lifted")
    assert lifted.object_id == str(closure.pk) and lifted.actor is None and lifted.actor_label == "flood"
    # Lifting twice changes nothing and records nothing.
    closure_lift(closure=closure, source_agent="flood")
    assert AuditEntry.objects.filter(action="closure.lifted").count() == 1
