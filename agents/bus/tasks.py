"""Thin Celery tasks of the bus agent, on the realtime queue (they must not wait behind nightly plans):
evaluate the live picture after positions arrive, and poll a GTFS-Realtime URL when one is configured."""
from __future__ import annotations

import logging
import urllib.request

from celery import shared_task
from django.db import transaction

from agents.bus.conf import conf
from agents.runtime.errors import TRANSIENT_ERRORS, TransientError
from city_ops.queues import Queue

log = logging.getLogger(__name__)


@shared_task(name="bus.evaluate_positions", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=2, retry_backoff_max=30, max_retries=3)
def evaluate_positions(feed_id: int | None = None) -> int:
    """Headways, bunching and gaps for a feed's current vehicles; returns the open warnings' count."""
    from .models import Feed, HeadwayWarning
    from .services.realtime import positions_evaluate

    feed = Feed.objects.filter(pk=feed_id).first() if feed_id else None
    positions_evaluate(feed=feed)
    return HeadwayWarning.objects.filter(feed=feed, status=HeadwayWarning.Status.OPEN).count()


def evaluate_positions_enqueue(*, feed_id: int | None) -> None:
    """Evaluate after the transaction that stored the positions commits."""
    transaction.on_commit(lambda: evaluate_positions.apply_async(args=[feed_id], queue=Queue.REALTIME.value))


@shared_task(name="bus.poll_vehicle_positions", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=5, retry_backoff_max=60, max_retries=2)
def poll_vehicle_positions() -> int:
    """Fetch BUS_GTFS_RT_URL (a VehiclePositions feed), store and evaluate it. No URL: nothing to do."""
    from .services.realtime import positions_ingest

    url = conf("BUS_GTFS_RT_URL")
    if not url:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=float(conf("BUS_GTFS_RT_TIMEOUT_S"))) as resp:
            data = resp.read(int(conf("BUS_POSITIONS_MAX_BYTES")))
    except OSError as exc:  # unreachable upstream: worth a retry
        raise TransientError(f"polling {url} failed: {exc}") from exc
    return positions_ingest(data=data, source="poll").stored
