"""Follow the work orders this agent created: a repaired defect leaves the open list and its segment's
condition improves the moment the order is done (or the defect is dismissed when the dispatcher cancels)."""
from __future__ import annotations

import logging

from django.db.models.signals import post_save
from django.dispatch import receiver

from city_ops.workorders.models import WorkOrder

log = logging.getLogger(__name__)


@receiver(post_save, sender=WorkOrder, dispatch_uid="roads.workorder_followed")
def _workorder_saved(sender, instance: WorkOrder, created: bool, **kwargs) -> None:
    if created or instance.source_agent != "roads":
        return
    from .services.defects import defect_order_closed

    try:
        # Its own savepoint: a failure here must never stop a crew from closing the order (the daily run
        # re-syncs defects from their orders anyway).
        defect_order_closed(order=instance)
    except Exception:
        log.exception("could not follow work order %s to its defect", instance.pk)
