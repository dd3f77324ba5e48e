"""Live operations: store vehicle positions (GTFS-Realtime or JSON AVL), evaluate headways per route and
direction with the core, keep bunching/gap warnings with their recommended action current, and record the
dispatcher's decision on each."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from agents.bus.conf import conf
from city_ops.core.partitions import partition_start, partitions_drop_before, partitions_ensure
from city_ops.core.services import audit_record

from ..domain.realtime import (
    PatternIndex,
    PositionBatch,
    patterns_build,
    positions_summary,
    vehicle_positions_read,
)
from ..domain.realtime import VehiclePosition as CorePosition
from ..models import Feed, HeadwaySnapshot, HeadwayWarning, VehiclePosition, VehicleState
from ..selectors import feed_frames, feed_near, vehicle_states_fresh

log = logging.getLogger(__name__)

_patterns_lock = threading.Lock()
_patterns: OrderedDict[tuple, PatternIndex] = OrderedDict()


def patterns_for(*, feed: Feed | None) -> PatternIndex | None:
    """The feed's route patterns for placing buses (built once per process and feed import)."""
    if feed is None:
        return None
    key = (feed.pk, feed.imported_at)
    with _patterns_lock:
        if key in _patterns:
            return _patterns[key]
    index = patterns_build(feed=feed_frames(feed=feed))
    with _patterns_lock:
        _patterns[key] = index
        while len(_patterns) > 4:
            _patterns.popitem(last=False)
    return index


@dataclass
class IngestResult:
    """A stored batch: how many positions, which feed they were matched to, the skipped entities, and the
    evaluation (the `positions_summary` JSON) when one was made."""

    stored: int
    feed: Feed | None
    problems: list[str] = field(default_factory=list)
    summary: dict | None = None


def _observed(pos: CorePosition, now: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(pos.timestamp, dt.UTC) if pos.timestamp else now


def feed_for_positions(*, positions: list[CorePosition]) -> Feed | None:
    """Which imported feed these buses belong to: the newest one with a stop near the batch's median
    position (a snapshot from a city whose static feed is not loaded matches none)."""
    if not positions:
        return None
    lats = sorted(p.lat for p in positions)
    lons = sorted(p.lon for p in positions)
    return feed_near(lat=lats[len(lats) // 2], lon=lons[len(lons) // 2],
                     within_m=float(conf("BUS_FEED_MATCH_M")))


# What a new report changes on a vehicle's latest state.
_STATE_FIELDS = frozenset({"label", "route_id", "trip_id", "direction_id", "geom", "bearing", "current_stop_sequence",
                           "stop_id", "observed_at", "source", "received_at"})


@transaction.atomic
def positions_store(*, positions: list[CorePosition], feed: Feed | None, source: str = "") -> int:
    """Append the positions to the history and move each vehicle's latest state forward (never back: a
    late, older report does not overwrite a newer one)."""
    now = timezone.now()
    history, latest = [], {}
    for pos in positions:
        observed = _observed(pos, now)
        fields = {"feed": feed, "vehicle_id": pos.vehicle_id[:100], "label": (pos.label or "")[:100],
                      "route_id": (pos.route_id or "")[:100], "trip_id": (pos.trip_id or "")[:120],
                      "direction_id": pos.direction_id, "geom": Point(pos.lon, pos.lat, srid=4326), "bearing": pos.bearing,
                      "current_stop_sequence": pos.current_stop_sequence, "stop_id": (pos.stop_id or "")[:100],
                      "observed_at": observed, "source": source[:20]}
        history.append(VehiclePosition(**fields))
        held = latest.get(pos.vehicle_id)
        if held is None or observed >= held["observed_at"]:
            latest[pos.vehicle_id] = fields
    VehiclePosition.objects.bulk_create(history, batch_size=2000)
    held = dict(VehicleState.objects.select_for_update().filter(feed=feed, vehicle_id__in=list(latest)).values_list(
        "vehicle_id", "observed_at"))
    newer = [VehicleState(received_at=now, **fields) for vid, fields in latest.items()
             if vid not in held or fields["observed_at"] >= held[vid]]
    if newer:
        # One upsert on (feed, vehicle): bulk_update writes a CASE per field per row, 10 s of CPU for a
        # city's 2,000 buses every 30 s.
        VehicleState.objects.bulk_create(newer, batch_size=2000, update_conflicts=True,
                                         unique_fields=["feed", "vehicle_id"],
                                         update_fields=sorted(_STATE_FIELDS))
    return len(history)


def _as_core(states: list[VehicleState]) -> PositionBatch:
    return PositionBatch([
        CorePosition(vehicle_id=s.vehicle_id, lat=s.geom.y, lon=s.geom.x, timestamp=int(s.observed_at.timestamp()),
                     route_id=s.route_id or None, trip_id=s.trip_id or None, direction_id=s.direction_id,
                     bearing=s.bearing, current_stop_sequence=s.current_stop_sequence, stop_id=s.stop_id or None,
                     label=s.label or None)
        for s in states])


def positions_evaluate(*, feed: Feed | None, positions: list[CorePosition] | None = None,
                       now: dt.datetime | None = None) -> dict:
    """Headways, bunching, gaps and advice for the current picture (the given positions, or the feed's
    fresh vehicle states), stored as per-route snapshots and open warnings. Returns the summary JSON."""
    now = now or timezone.now()
    if positions is None:
        positions = _as_core(vehicle_states_fresh(feed=feed))
    summary = positions_summary(
        positions=positions, patterns=patterns_for(feed=feed),
        speed_kmh=float(conf("BUS_SPEED_KMH")),
        max_hold_s=float(conf("BUS_MAX_HOLD_S")))
    _warnings_update(feed=feed, summary=summary, positions=positions, now=now)
    return summary


@transaction.atomic
def _warnings_update(*, feed: Feed | None, summary: dict, positions: list[CorePosition], now: dt.datetime) -> None:
    """Store the evaluation: a snapshot per route and direction, open warnings updated or created per
    flagged pair (a pair the dispatcher decided on within the cooldown is left alone), and open warnings of
    the evaluated routes that are no longer flagged expired. A few queries per evaluation, not per pair:
    a snapshot of 600 buses flags about a hundred pairs."""
    observed = dt.datetime.fromtimestamp(summary["timestamp"], dt.UTC) if summary.get("timestamp") else None
    where = {p.vehicle_id: p for p in positions}
    HeadwaySnapshot.objects.bulk_create([HeadwaySnapshot(
        feed=feed, evaluated_at=now, observed_at=observed, route_id=str(r["route_id"])[:100],
        direction_id=r["direction_id"], vehicles=r["vehicles"], headways_s=r["headways_s"],
        scheduled_headway_s=r["scheduled_headway_s"], scheduled_source=(r.get("scheduled_source") or "")[:10],
        cv=r["cv"], grade=r["grade"] or "", ewt_s=r["ewt_s"], bunching=len(r["bunching"]), gaps=len(r["gaps"]))
        for r in summary["routes"]])

    def key_of(w) -> tuple:
        return (w.kind, w.route_id, w.direction_id, w.leader, w.follower)

    cooldown = dt.timedelta(seconds=float(conf("BUS_WARNING_COOLDOWN_S")))
    mine = HeadwayWarning.objects.select_for_update().filter(feed=feed)
    open_now = {key_of(w): w for w in mine.filter(status=HeadwayWarning.Status.OPEN)}
    decided = {key_of(w) for w in mine.filter(
        status__in=[HeadwayWarning.Status.ACCEPTED, HeadwayWarning.Status.DISMISSED], decided_at__gte=now - cooldown)}
    fresh, changed, seen = [], [], set()
    advice = defaultdict(list)  # by route and direction: one pass, not one per warning
    for a in summary.get("advice", []):
        advice[(a["route_id"], a["direction_id"])].append(a)
    for r in summary["routes"]:
        route_id = str(r["route_id"])[:100]
        headway_of = {tuple(p): h for p, h in zip(r["pairs"], r["headways_s"])}
        for kind, pairs in ((HeadwayWarning.Kind.BUNCHING, r["bunching"]), (HeadwayWarning.Kind.GAP, r["gaps"])):
            for k, (leader, follower) in enumerate(pairs):
                key = (kind, route_id, r["direction_id"], leader, follower)
                if key in decided:  # the dispatcher has just dealt with this pair: do not nag
                    continue
                pos = where.get(follower)
                values = dict(
                    headway_s=round(headway_of.get((leader, follower), 0.0), 1),
                    scheduled_headway_s=r["scheduled_headway_s"],
                    scheduled_source=(r.get("scheduled_source") or "")[:10], last_seen_at=now,
                    geom=Point(pos.lon, pos.lat, srid=4326) if pos else None,
                    **_advice_for(advice[(r["route_id"], r["direction_id"])], kind, k, leader, follower))
                warning = open_now.get(key)
                if warning is None:
                    fresh.append(HeadwayWarning(feed=feed, kind=kind, route_id=route_id, direction_id=r["direction_id"],
                                                leader=leader, follower=follower, **values))
                else:
                    for name, value in values.items():
                        setattr(warning, name, value)
                    changed.append(warning)
                    seen.add(warning.pk)
    HeadwayWarning.objects.bulk_create(fresh)
    if changed:  # an upsert on the primary key: one statement, not a CASE per field per row (see positions_store)
        HeadwayWarning.objects.bulk_create(changed, batch_size=1000, update_conflicts=True, unique_fields=["id"],
                                           update_fields=list(values))
    # Open warnings of the routes just evaluated that the picture no longer shows have resolved themselves
    # (a batch from one route leaves the other routes' warnings alone).
    evaluated = {(str(r["route_id"])[:100], r["direction_id"]) for r in summary["routes"]}
    gone = [w.pk for key, w in open_now.items() if w.pk not in seen and (key[1], key[2]) in evaluated]
    HeadwayWarning.objects.filter(pk__in=gone).update(status=HeadwayWarning.Status.EXPIRED, note="no longer seen")


def _advice_for(same: list[dict], kind: str, k: int, leader: str, follower: str) -> dict:
    """The core's recommendation (`same`: its advice for this pair's route and direction) for the k-th
    pair of its kind: hold the follower (bunching) or dispatch a standby bus into the gap (the core lists
    one dispatch per gap, in order); a bunched pair the core found no useful hold for is to be watched."""
    if kind == HeadwayWarning.Kind.BUNCHING:
        hit = next((a for a in same if a["action"] == "hold" and a["vehicle_id"] == follower), None)
        if hit:
            return {"action": HeadwayWarning.Action.HOLD, "action_vehicle": follower, "action_stop_id": hit["stop_id"] or "",
                        "action_seconds": int(hit["seconds"]), "reason": hit["reason"][:300]}
        return {"action": HeadwayWarning.Action.WATCH, "action_vehicle": follower, "action_stop_id": "",
                    "action_seconds": None, "reason": f"{follower} close behind {leader}; the bus behind is closer still"}
    dispatches = [a for a in same if a["action"] == "dispatch"]
    hit = dispatches[k] if k < len(dispatches) else None
    return {"action": HeadwayWarning.Action.DISPATCH, "action_vehicle": "", "action_stop_id": (hit or {}).get("stop_id") or "",
                "action_seconds": None, "reason": (hit or {}).get("reason", f"gap between {leader} and {follower}")[:300]}


def positions_ingest(*, data: bytes, feed: Feed | None = None, source: str = "", evaluate: bool = True) -> IngestResult:
    """Read a GTFS-Realtime FeedMessage or JSON AVL pings (RealtimeError when unreadable as a whole; bad
    entities are skipped and listed), store them, and evaluate the batch when asked."""
    batch = vehicle_positions_read(data=data)
    feed = feed if feed is not None else feed_for_positions(positions=batch)
    stored = positions_store(positions=batch, feed=feed, source=source or batch.source)
    problems = [str(p) for p in batch.problems]
    summary = positions_evaluate(feed=feed, positions=batch) if evaluate and len(batch) else None
    return IngestResult(stored=stored, feed=feed, problems=problems, summary=summary)


@transaction.atomic
def warning_decide(*, warning: HeadwayWarning, decision: str, user, note: str = "") -> HeadwayWarning:
    """Record a dispatcher's accept or dismiss of a warning (once; a decided warning stays decided)."""
    from django.core.exceptions import ValidationError

    status = {"accept": HeadwayWarning.Status.ACCEPTED, "dismiss": HeadwayWarning.Status.DISMISSED}.get(decision)
    if status is None:
        raise ValidationError(f"unknown decision {decision!r}: accept or dismiss")
    warning = HeadwayWarning.objects.select_for_update().get(pk=warning.pk)
    if warning.status not in (HeadwayWarning.Status.OPEN, HeadwayWarning.Status.EXPIRED):
        raise ValidationError(f"this warning was already {warning.status} by "
                              f"{warning.decided_by or 'someone'} at {warning.decided_at:%H:%M}")
    warning.status = status
    warning.decided_by = user if getattr(user, "is_authenticated", False) else None
    warning.decided_at = timezone.now()
    warning.note = note[:300]
    warning.save()
    audit_record(action=f"bus.warning.{warning.status}", obj=warning, actor=user,
                 changes={"advice": warning.advice_text, "note": note})
    return warning


def positions_partitions_ensure(*, today: dt.date | None = None) -> dict[str, int]:
    """The position history's day partitions from today (UTC) to BUS_POSITION_PARTITIONS_AHEAD days ahead,
    made where missing (a day's positions waiting in the default partition moved in): today's positions
    never pile up in the default. Returns {created partition: positions moved}."""
    return partitions_ensure(table=VehiclePosition._meta.db_table,
                             ahead=int(conf("BUS_POSITION_PARTITIONS_AHEAD")),
                             period="day", today=today)


def history_prune(*, keep_days: int | None = None, today: dt.date | None = None) -> int:
    """Drop the position history before the UTC day BUS_POSITION_HISTORY_DAYS (default 7) before today,
    whole days at a time (a catalog change, not millions of deletes; the default partition's older rows
    are deleted), and the headway snapshots older than that many days; make the days ahead. Returns how
    many positions went. Idempotent: a second run removes nothing."""
    keep_days = keep_days or int(conf("BUS_POSITION_HISTORY_DAYS"))
    today = today or timezone.now().date()
    positions_partitions_ensure(today=today)
    before = today - dt.timedelta(days=keep_days)
    # Counted first (the old days' partitions and the default's old rows, through the time index): a
    # dropped partition does not say how many rows it held.
    n = VehiclePosition.objects.filter(observed_at__lt=partition_start(before)).count()
    partitions_drop_before(table=VehiclePosition._meta.db_table, before=before, period="day")
    HeadwaySnapshot.objects.filter(evaluated_at__lt=timezone.now() - dt.timedelta(days=keep_days)).delete()
    return n
