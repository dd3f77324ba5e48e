"""After migrate: the readings table's monthly partitions from the current month to
FLOOD_READING_PARTITIONS_AHEAD ahead (services/storage.py), so a fresh or long-idle database has them before
beat first fires. No retention here: dropping readings is the daily job's, never a deploy's side effect."""
from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def _readings_partitions(sender, **kwargs):
    if getattr(sender, "label", "") != "agent_flood":
        return
    from agents.flood.models import Reading
    from agents.flood.services.storage import readings_partitions_maintain
    from city_ops.core.partitions import table_partitioned

    if table_partitioned(table=Reading._meta.db_table):  # not where migrated back before 0006
        readings_partitions_maintain(retention=False)
