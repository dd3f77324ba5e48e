"""/healthz: the database, Redis, and Celery workers seen recently (heartbeats written by workers)."""
from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .redis import redis_client

# hash: worker hostname -> unix time of its last heartbeat
WORKER_KEY = f"{settings.REDIS_KEY_PREFIX}cityops:workers"
WORKER_FRESH_S = 120


def worker_heartbeat(*, hostname: str, queues: list[str]) -> None:
    r = redis_client()
    r.hset(WORKER_KEY, hostname, f"{time.time():.0f}|{','.join(queues)}")


def workers_seen(*, within_s: int = WORKER_FRESH_S) -> dict[str, list[str]]:
    now = time.time()
    seen = {}
    for host, value in redis_client().hgetall(WORKER_KEY).items():
        ts, _, queues = value.decode().partition("|")
        if now - float(ts) <= within_s:
            seen[host.decode()] = queues.split(",") if queues else []
    return seen


@require_GET
def healthz(request):
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT postgis_lib_version()")
            checks["database"] = {"ok": True, "postgis": cur.fetchone()[0]}
    except Exception as exc:  # report, do not raise: this endpoint is what tells you it is down
        checks["database"] = {"ok": False, "error": str(exc)[:200]}
    try:
        redis_client().ping()
        checks["redis"] = {"ok": True}
        seen = workers_seen()
        checks["workers"] = {"ok": bool(seen), "seen": seen}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": str(exc)[:200]}
        checks["workers"] = {"ok": False, "seen": {}}
    ok = checks["database"]["ok"] and checks["redis"]["ok"]
    # Workers missing is degraded, not down: the console still serves; the status says which.
    status = "ok" if ok and checks["workers"]["ok"] else ("degraded" if ok else "down")
    return JsonResponse({"status": status, "checks": checks}, status=200 if ok else 503)
