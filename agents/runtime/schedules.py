"""One beat schedule for the whole project, built from the agents' declared schedules and stored in
django-celery-beat's tables so operators can edit times in the admin. Existing entries are never
overwritten: an operator's change survives the next migrate."""
from __future__ import annotations

import json

from django.conf import settings

REAPER_TASK_NAME = "runtime: reap stuck runs"
# With CITY_OPS_RUN_DEAD_AFTER_S (40 s) this bounds a dead worker's run to 60 s before it is back in a queue.
REAP_EVERY_S = 20


def schedules_sync() -> list[str]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    from city_ops.queues import Queue

    from .registry import agents_all

    created = []

    def ensure(name, task, *, queue, kwargs=None, crontab=None, every_s=None):
        if PeriodicTask.objects.filter(name=name).exists():
            return
        fields = dict(name=name, task=task, queue=queue, kwargs=json.dumps(kwargs or {}))
        if crontab:
            sched, _ = CrontabSchedule.objects.get_or_create(
                minute=crontab.get("minute", "0"), hour=crontab.get("hour", "*"),
                day_of_week=crontab.get("day_of_week", "*"), day_of_month=crontab.get("day_of_month", "*"),
                month_of_year=crontab.get("month_of_year", "*"), timezone=settings.CITY_TIME_ZONE)
            fields["crontab"] = sched
        else:
            sched, _ = IntervalSchedule.objects.get_or_create(every=every_s, period=IntervalSchedule.SECONDS)
            fields["interval"] = sched
        PeriodicTask.objects.create(**fields)
        created.append(name)

    ensure(REAPER_TASK_NAME, "agents.reap_stuck_runs", queue=Queue.DEFAULT.value, every_s=REAP_EVERY_S)
    ensure("notifications: escalate unacknowledged", "notifications.escalate", queue=Queue.DEFAULT.value, every_s=60)
    for agent in agents_all():
        for s in agent.schedules:
            run = {"agent": agent.name, "trigger": s.trigger, "for_tomorrow": s.for_tomorrow}
            ensure(f"{agent.name}: {s.name}", s.task or "agents.schedule_run", queue=Queue.DEFAULT.value,
                   kwargs=None if s.task else run, crontab=s.crontab, every_s=s.every_s)
    return created
