"""After migrate: the beat entry that polls a GTFS-Realtime VehiclePositions URL on the realtime queue
(services/schedules.py). Created once (an operator's edits in the admin survive), enabled only where
BUS_GTFS_RT_URL is set."""
from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def _poll_schedule(sender, **kwargs):
    if getattr(sender, "label", "") != "agent_bus":
        return
    from agents.bus.services.schedules import poll_schedule_ensure

    poll_schedule_ensure()
