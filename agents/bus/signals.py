"""After migrate: the beat entry that polls a GTFS-Realtime VehiclePositions URL on the realtime queue.
Created once (an operator's edits in the admin survive), enabled only where BUS_GTFS_RT_URL is set."""
from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver

from agents.bus.conf import conf

POLL_TASK_NAME = "bus: poll vehicle positions"


@receiver(post_migrate)
def _poll_schedule(sender, **kwargs):
    if getattr(sender, "label", "") != "agent_bus":
        return
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from city_ops.queues import Queue

    if PeriodicTask.objects.filter(name=POLL_TASK_NAME).exists():
        return
    every = int(conf("BUS_GTFS_RT_POLL_S"))
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name=POLL_TASK_NAME, task="bus.poll_vehicle_positions", interval=interval,
                                queue=Queue.REALTIME.value, enabled=bool(conf("BUS_GTFS_RT_URL")))
