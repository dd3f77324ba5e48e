"""The GTFS-Realtime poll's beat entry: created once after migrate, on the realtime queue, enabled only where a
feed URL is set, and an operator's edit survives the next migrate."""
from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from agents.bus.services.schedules import POLL_TASK_NAME, poll_schedule_ensure

pytestmark = pytest.mark.django_db


def test_poll_entry_is_created_once_and_keeps_an_operators_edit(settings):
    PeriodicTask.objects.filter(name=POLL_TASK_NAME).delete()
    settings.BUS_GTFS_RT_URL = ""
    settings.BUS_GTFS_RT_POLL_S = 45
    assert poll_schedule_ensure() is True
    task = PeriodicTask.objects.get(name=POLL_TASK_NAME)
    assert (task.task, task.queue, task.enabled) == ("bus.poll_vehicle_positions", "realtime", False)
    assert (task.interval.every, task.interval.period) == (45, "seconds")

    task.enabled = True  # an operator turns it on in the admin
    task.save()
    settings.BUS_GTFS_RT_POLL_S = 10
    assert poll_schedule_ensure() is False
    task.refresh_from_db()
    assert task.enabled and task.interval.every == 45


def test_poll_entry_is_enabled_where_a_feed_url_is_set(settings):
    PeriodicTask.objects.filter(name=POLL_TASK_NAME).delete()
    settings.BUS_GTFS_RT_URL = "https://example.org/vehicle-positions.pb"
    poll_schedule_ensure()
    assert PeriodicTask.objects.get(name=POLL_TASK_NAME).enabled
