"""Thin Celery tasks of the flood agent. Its evaluations are agent runs, which the runtime's
`agents.run_agent` executes on the realtime queue: beat creates one every minute (trigger `monitor`) and
each ingest asks for one after its commit (`services.ingest.evaluation_request`, one pending at a time).
Drills started from the panel run here, one tick per task on the default queue, paced by the countdown
the previous tick set (`services.drills`). The readings' monthly partitions and retention run daily from
the agent's beat schedule, on the default queue (`services.storage`)."""

from __future__ import annotations

from celery import shared_task

from agents.runtime.errors import TRANSIENT_ERRORS


@shared_task(
    name="flood.drill_tick",
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=30,
    max_retries=5,
)
def drill_tick(drill_id: int, tick: int) -> str:
    """Run one tick of a drill (a repeated or stale message does nothing)."""
    from .services.drills import drill_tick_advance

    drill = drill_tick_advance(drill_id=drill_id, tick=tick)
    return drill.status if drill else "skipped"


@shared_task(name="flood.readings_partitions_maintain", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=60, retry_backoff_max=900, max_retries=3)
def readings_partitions_maintain() -> dict:
    """The readings table's monthly partitions made ahead, and the retention (daily, from beat)."""
    from .services.storage import readings_partitions_maintain as maintain

    out = maintain()
    return {"created": out.created, "dropped": out.dropped, "default_rows_deleted": out.deleted}
