"""After migrate: the beat entry that polls a GTFS-Realtime VehiclePositions URL on the realtime queue
(services/schedules.py), created once (an operator's edits in the admin survive), enabled only where
BUS_GTFS_RT_URL is set; and the position history's day partitions from today to
BUS_POSITION_PARTITIONS_AHEAD ahead (services/realtime.py), so a fresh or long-idle database has them before
the evening review first prunes. No pruning here: dropping history is the review's, never a deploy's."""
from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def _poll_schedule(sender, **kwargs):
    if getattr(sender, "label", "") != "agent_bus":
        return
    from agents.bus.services.schedules import poll_schedule_ensure

    poll_schedule_ensure()


@receiver(post_migrate)
def _positions_partitions(sender, **kwargs):
    if getattr(sender, "label", "") != "agent_bus":
        return
    from agents.bus.models import VehiclePosition
    from agents.bus.services.realtime import positions_partitions_ensure
    from city_ops.core.partitions import table_partitioned

    if table_partitioned(table=VehiclePosition._meta.db_table):  # not where migrated back before 0003
        positions_partitions_ensure()
