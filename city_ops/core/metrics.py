"""Prometheus metrics. Request counts live in each web process; task counts are kept in Redis by Celery
signals (workers are other processes) and agent-run outcomes are read from the database at scrape time, so
one scrape of /metrics shows the whole system."""
from __future__ import annotations

import time

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "cityops_http_requests_total", "HTTP requests", ["method", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram("cityops_http_request_seconds", "HTTP request latency", registry=REGISTRY)

TASK_KEY = f"{settings.REDIS_KEY_PREFIX}cityops:metrics:tasks"


def task_count(*, queue: str, task: str, state: str, seconds: float | None = None) -> None:
    """Count one task outcome in Redis (called from Celery signals in worker processes)."""
    from .redis import redis_client

    r = redis_client()
    pipe = r.pipeline()
    pipe.hincrby(TASK_KEY, f"{queue}|{task}|{state}", 1)
    if seconds is not None:
        pipe.hincrbyfloat(TASK_KEY, f"{queue}|{task}|seconds", seconds)
    pipe.execute()


class _DatabaseCollector:
    def describe(self):
        return []  # no collect() at registration time: the database may not exist yet

    def collect(self):
        from django.db.models import Count

        from agents.runtime.models import AgentRun

        runs = CounterMetricFamily("cityops_agent_runs", "Agent runs by outcome", labels=["agent", "status"])
        for row in AgentRun.objects.values("agent", "status").annotate(n=Count("id")):
            runs.add_metric([row["agent"], row["status"]], row["n"])
        yield runs
        try:
            from .redis import redis_client

            data = redis_client().hgetall(TASK_KEY)
        except Exception:  # a scrape must not fail because Redis is down; /healthz reports that
            data = {}
        tasks = CounterMetricFamily("cityops_tasks", "Celery tasks by queue and state", labels=["queue", "task", "state"])
        secs = CounterMetricFamily("cityops_task_seconds", "Celery task run time", labels=["queue", "task"])
        for key, value in data.items():
            queue, task, state = key.decode().split("|")
            if state == "seconds":
                secs.add_metric([queue, task], float(value))
            else:
                tasks.add_metric([queue, task, state], float(value))
        yield tasks
        yield secs
        up = GaugeMetricFamily("cityops_scrape_time", "Unix time of this scrape")
        up.add_metric([], time.time())
        yield up


REGISTRY.register(_DatabaseCollector())


def metrics_render() -> bytes:
    return generate_latest(REGISTRY)
