"""The Celery app. Tasks are discovered in every installed app's `tasks.py`; routing is by explicit queue on
each task (see city_ops.queues.Queue), so nothing falls into a queue no worker listens on."""
import os

from celery import Celery
from kombu import Queue as KombuQueue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city_ops.settings.local")

app = Celery("city_ops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _queues():
    from city_ops.queues import Queue

    return [KombuQueue(q.value, routing_key=q.value) for q in Queue]


app.conf.task_queues = _queues()
