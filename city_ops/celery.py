"""The Celery app. Tasks are discovered in every installed app's `tasks.py`; routing is by explicit queue on
each task (see city_ops.queues.Queue), so nothing falls into a queue no worker listens on."""
import os
import resource

from celery import Celery, signals
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city_ops.settings.local")

app = Celery("city_ops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _queues():
    from city_ops.queues import Queue

    return [KombuQueue(q.value, routing_key=q.value) for q in Queue]


app.conf.task_queues = _queues()


@signals.worker_process_init.connect
def _worker_memory_limit(**_):
    """Cap the address space of the process that runs tasks (a prefork child, or the solo pool's one
    process) at CITY_OPS_WORKER_MEMORY_LIMIT_MB, so an allocation past it raises MemoryError in the run
    that made it, which fails with that reason, and the worker lives on. A prefork parent stays unlimited:
    it replaces children."""
    from django.conf import settings

    limit_mb = settings.CITY_OPS_WORKER_MEMORY_LIMIT_MB
    if limit_mb:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = limit_mb * 2**20 if hard == resource.RLIM_INFINITY else min(limit_mb * 2**20, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
