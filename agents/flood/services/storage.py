"""Upkeep of the readings table, partitioned by UTC month (migration 0006, `city_ops.core.partitions`): the
partitions of the current month and FLOOD_READING_PARTITIONS_AHEAD months after it are made ahead, so a
month's readings never pile up in the default partition (which takes only readings of months without a
partition: history from years ago); and, where FLOOD_READING_RETENTION_MONTHS is set, whole months older
than that are dropped. Run daily by beat (`flood.readings_partitions_maintain`) and after every migrate, so
a fresh database has its partitions before beat first fires."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.utils import timezone

from city_ops.core.partitions import month_add, month_start, partitions_drop_before, partitions_ensure
from city_ops.core.services import audit_record

from ..conf import conf
from ..models import Reading

log = logging.getLogger(__name__)


@dataclass
class PartitionsOutcome:
    """What one upkeep did: partitions created (with the rows each took from the default partition), the
    retention's cutoff (None: readings kept for ever), the partitions dropped and the default's rows deleted."""

    created: dict[str, int] = field(default_factory=dict)
    before: dt.date | None = None
    dropped: list[str] = field(default_factory=list)
    deleted: int = 0


def readings_retention_cutoff(*, today: dt.date) -> dt.date | None:
    """The first day whose readings the retention keeps: FLOOD_READING_RETENTION_MONTHS whole months before
    the current UTC month (so 12 in December 2026 keeps December 2025 on); None when it is 0 (keep all)."""
    months = int(conf("FLOOD_READING_RETENTION_MONTHS"))
    return month_add(month_start(today), -months) if months > 0 else None


def readings_partitions_maintain(*, today: dt.date | None = None, retention: bool = True) -> PartitionsOutcome:
    """Create the missing monthly partitions from the current UTC month to FLOOD_READING_PARTITIONS_AHEAD
    months ahead and, with `retention`, drop those before `readings_retention_cutoff`. Idempotent: a second
    run (or one beside it) changes nothing. A drop is audited (`flood.readings_dropped`)."""
    today = today or timezone.now().date()
    table = Reading._meta.db_table
    out = PartitionsOutcome(created=partitions_ensure(
        table=table, ahead=int(conf("FLOOD_READING_PARTITIONS_AHEAD")), today=today))
    out.before = readings_retention_cutoff(today=today) if retention else None
    if out.before is not None:
        out.dropped, out.deleted = partitions_drop_before(table=table, before=out.before)
    if out.dropped or out.deleted:
        audit_record(action="flood.readings_dropped", object_type="agent_flood.reading",
                     actor_label="flood:retention",
                     changes={"before": out.before.isoformat(), "partitions": out.dropped,
                              "default_rows": out.deleted})
    if out.created or out.dropped or out.deleted:
        log.info("flood readings partitions: created %s, dropped %s, %d old rows of the default deleted",
                 out.created, out.dropped, out.deleted)
    return out
