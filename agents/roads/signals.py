"""Follow the work orders this agent created: a repaired defect leaves the open list and its segment's
condition improves the moment the order is done (or the defect is dismissed when the dispatcher cancels)."""
from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from city_ops.workorders.models import WorkOrder


@receiver(post_save, sender=WorkOrder, dispatch_uid="roads.workorder_followed")
def _workorder_saved(sender, instance: WorkOrder, created: bool, **kwargs) -> None:
    if created or instance.source_agent != "roads":
        return
    from .services.defects import defect_order_closed

    # No catch-all here: this runs inside the transaction that saves the order, so a failed statement has
    # already aborted it and swallowing the error could not keep the crew's change (the next write fails on
    # the aborted transaction instead). A defect that cannot follow its order is a bug to see; the order's
    # change and the defect's follow-up commit together or not at all.
    defect_order_closed(order=instance)
