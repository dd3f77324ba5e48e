"""The bus agent's beat entry beside its declared `schedules`: the GTFS-Realtime poll runs every
BUS_GTFS_RT_POLL_S seconds, an interval the crontab declarations cannot say."""
from __future__ import annotations

from django.db import transaction

from agents.bus.conf import conf
from city_ops.queues import Queue

POLL_TASK_NAME = "bus: poll vehicle positions"


@transaction.atomic
def poll_schedule_ensure() -> bool:
    """Create the poll's beat entry once, enabled only where BUS_GTFS_RT_URL is set; an existing entry (an
    operator's edits in the admin) is left as it is. Returns whether it was created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=POLL_TASK_NAME).exists():
        return False
    every = int(conf("BUS_GTFS_RT_POLL_S"))
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name=POLL_TASK_NAME, task="bus.poll_vehicle_positions", interval=interval,
                                queue=Queue.REALTIME.value, enabled=bool(conf("BUS_GTFS_RT_URL")))
    return True
