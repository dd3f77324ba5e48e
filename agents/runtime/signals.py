"""Wiring: Celery task metrics and worker heartbeats; role groups and beat schedules after migrate."""
from __future__ import annotations

import logging
import socket
import threading
import time

from celery import signals as celery_signals
from django.db.models.signals import post_migrate
from django.dispatch import receiver

log = logging.getLogger(__name__)
_task_started: dict[str, float] = {}


@celery_signals.task_prerun.connect
def _task_prerun(task_id=None, task=None, **_):
    _task_started[task_id] = time.perf_counter()


@celery_signals.task_postrun.connect
def _task_postrun(task_id=None, task=None, state=None, **_):
    from city_ops.core.metrics import task_count

    started = _task_started.pop(task_id, None)
    queue = (task.request.delivery_info or {}).get("routing_key", "") if task else ""
    try:
        task_count(queue=queue or "?", task=task.name if task else "?", state=state or "?",
                   seconds=(time.perf_counter() - started) if started else None)
    except Exception:  # metrics must never fail a task
        log.debug("task metrics not recorded", exc_info=True)


@celery_signals.worker_ready.connect
def _worker_ready(sender=None, **_):
    """Start a heartbeat thread in the worker's main process: /healthz shows workers seen recently."""
    from city_ops.core.health import worker_heartbeat

    hostname = getattr(sender, "hostname", socket.gethostname())
    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()] if sender else []

    def beat():
        while True:
            try:
                worker_heartbeat(hostname=hostname, queues=queues)
            except Exception:
                log.debug("worker heartbeat failed", exc_info=True)
            time.sleep(20)

    threading.Thread(target=beat, daemon=True, name="cityops-heartbeat").start()


@receiver(post_migrate)
def _after_migrate(sender, **kwargs):
    if getattr(sender, "label", "") != "agents_core":
        return
    from city_ops.core.services import roles_ensure

    from .schedules import schedules_sync

    roles_ensure()
    schedules_sync()
