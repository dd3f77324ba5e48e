"""Vehicle plans: build one (exact minimum fleet, then least deadhead, by the core), store it as a new
version, let a dispatcher edit the draft (move a trip, lock blocks, re-optimise the rest, assign buses and
drivers; every edit is checked for coverage and layover and refused with the reason), approve it, and
export it as CSV or as a one-day GTFS with block_id."""
from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
import zipfile
from dataclasses import dataclass

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from agents.bus.conf import conf
from city_ops.core.services import audit_record
from city_ops.core.timeutil import day_bounds

from ..domain.blocking import (
    BlockPlan,
    PlanError,
    block_trip_move,
    blocks_baseline,
    blocks_gtfs_tables,
    blocks_optimise,
    blocks_reoptimise,
    fleet_lower_bound,
    plan_check,
    plan_measure,
)
from ..domain.gtfs import seconds_format, service_ids_active
from ..models import Block, BlockTrip, Feed, VehiclePlan
from ..selectors import day_trips, feed_frames, plan_blocks
from .deadhead import NetworkDeadhead, depot_choose, trip_end_points


class NoServiceError(ValueError):
    """No trip of the feed runs on the requested service date."""


class PlanEditError(ValidationError):
    """An edit that would break the plan (or is not allowed on it); the messages say why."""


def default_layover_s() -> float:
    return float(conf("BUS_LAYOVER_MIN")) * 60.0


def default_max_wait_s() -> float | None:
    """Longest idle wait considered between two trips of a block. None (the default) considers every
    compatible pair, which keeps the minimum fleet exact (about 2,000 trips make 1.8 million links and solve
    in well under a second); past the core's LINK_BUDGET the links are bounded per trip instead (see
    `domain.blocking._links_bounded`), so a city-wide day needs no window to fit in memory."""
    minutes = conf("BUS_PLAN_MAX_WAIT_MIN")
    return None if minutes in (None, 0) else float(minutes) * 60.0


_DEFAULT = object()


@dataclass
class PlanContext:
    """What checking or re-solving a plan needs: the day's trips, the deadhead and the depot."""

    trips: pd.DataFrame
    deadhead: NetworkDeadhead
    depot: object  # StopPoint | None
    depot_place: object  # Place | None


def _context(*, feed: Feed, service_date: dt.date, use_depot: bool = True) -> PlanContext:
    trips = day_trips(feed=feed, service_date=service_date)
    if trips.empty:
        frames = feed_frames(feed=feed)
        raise NoServiceError(
            f"no trips of feed #{feed.pk} ({feed.name}) run on {service_date.isoformat()} "
            f"(service from {feed.service_start} to {feed.service_end}; "
            f"{len(service_ids_active(feed=frames, service_date=service_date))} service ids active that day)")
    at = day_bounds(service_date)[0]  # the network as it will be when the day starts (open-ended closures)
    max_snap = float(conf("BUS_DEADHEAD_MAX_SNAP_M"))
    points = trip_end_points(trips=trips)
    depot_place, depot = depot_choose(points=points, max_snap_m=max_snap, at=at) if use_depot else (None, None)
    depots = [depot] if depot else []
    # Deadheads run from a last stop or the depot to a first stop or the depot (see NetworkDeadhead).
    dead = NetworkDeadhead(points=trip_end_points(trips=trips, ends=("first",)) + depots, at=at, max_snap_m=max_snap,
                           origins=trip_end_points(trips=trips, ends=("last",)) + depots)
    return PlanContext(trips=trips, deadhead=dead, depot=depot, depot_place=depot_place)


def _plan_context(plan: VehiclePlan) -> PlanContext:
    return _context(feed=plan.feed, service_date=plan.service_date, use_depot=plan.depot_id is not None)


def _block_rows(plan: VehiclePlan, trips: pd.DataFrame, blocks: list[list[str]], sequences: list[int],
                keep: dict[int, Block] | None = None) -> None:
    """Write blocks (new rows, or existing ones in `keep` by sequence) and their trips."""
    # In bulk, and the trips as plain dicts: a row lookup per trip and an INSERT per block took a city-wide
    # plan (1,726 blocks, 20,400 trips) many seconds.
    by_key = trips.set_index("trip_key")[["trip_id", "route_id", "start_s", "end_s", "first_stop_id",
                                          "last_stop_id"]].to_dict("index")
    keep = keep or {}
    made = Block.objects.bulk_create([Block(plan=plan, sequence=seq) for seq in sequences if seq not in keep])
    block_of = {**{b.sequence: b for b in made}, **keep}
    rows = []
    for seq, keys in zip(sequences, blocks):
        for order, key in enumerate(keys, start=1):
            t = by_key[key]
            rows.append(BlockTrip(block=block_of[seq], order=order, trip_key=key, trip_id=str(t["trip_id"]),
                                  route_id=str(t["route_id"]), start_s=round(t["start_s"]),
                                  end_s=round(t["end_s"]), first_stop_id=str(t["first_stop_id"]),
                                  last_stop_id=str(t["last_stop_id"])))
    BlockTrip.objects.bulk_create(rows, batch_size=2000)


def _kpis_store(plan: VehiclePlan, ctx: PlanContext, blocks: list[list[str]]) -> None:
    measure = plan_measure(trips=ctx.trips, blocks=[b for b in blocks if b], deadhead=ctx.deadhead, depot=ctx.depot)
    plan.trips = len(ctx.trips)
    plan.vehicles = sum(1 for b in blocks if b)
    plan.lower_bound = fleet_lower_bound(trips=ctx.trips, layover_s=plan.layover_s)
    plan.deadhead_km = round(measure["deadhead_m"] / 1000.0, 3)
    plan.deadhead_min = round(measure["deadhead_s"] / 60.0, 1)
    plan.save()


def _baseline(ctx: PlanContext, layover_s: float) -> dict:
    """The city's own blocking of the same trips (the feed's blocks, else first-fit) measured as the plan is."""
    blocks, rule = blocks_baseline(trips=ctx.trips, layover_s=layover_s, deadhead=ctx.deadhead)
    measure = plan_measure(trips=ctx.trips, blocks=blocks, deadhead=ctx.deadhead, depot=ctx.depot)
    km = measure["deadhead_m"] / 1000.0
    return {"baseline_rule": rule, "baseline_vehicles": len(blocks),
            "baseline_deadhead_km": round(km, 3) if math.isfinite(km) else None}


def plan_create(
    *, feed: Feed, service_date: dt.date, layover_s: float | None = None, max_wait_s=_DEFAULT,
    reason: str = "", user=None, run=None,
) -> VehiclePlan:
    """Plan the service date and store it as the next draft version of the feed's plan for that date."""
    layover_s = default_layover_s() if layover_s is None else float(layover_s)
    max_wait_s = default_max_wait_s() if max_wait_s is _DEFAULT else max_wait_s
    ctx = _context(feed=feed, service_date=service_date)
    solved: BlockPlan = blocks_optimise(trips=ctx.trips, layover_s=layover_s, deadhead=ctx.deadhead,
                                        depot=ctx.depot, max_wait_s=max_wait_s)
    base = _baseline(ctx, layover_s)
    with transaction.atomic():
        Feed.objects.select_for_update().get(pk=feed.pk)  # serialises version numbers per feed
        last = VehiclePlan.objects.filter(feed=feed, service_date=service_date).aggregate(v=Max("version"))["v"]
        plan = VehiclePlan.objects.create(
            feed=feed, service_date=service_date, version=(last or 0) + 1, reason=reason[:300],
            created_by=user if getattr(user, "is_authenticated", False) else None, run=run, layover_s=layover_s,
            max_wait_s=max_wait_s, depot=ctx.depot_place, deadhead_source=ctx.deadhead.source,
            trips=solved.trips, vehicles=solved.vehicles, lower_bound=solved.lower_bound,
            feed_vehicles=solved.feed_vehicles, deadhead_km=round(solved.deadhead_km, 3),
            deadhead_min=round(solved.deadhead_s / 60.0, 1), solve_s=round(solved.solve_s, 3),
            **base)
        _block_rows(plan, ctx.trips, solved.blocks, list(range(1, len(solved.blocks) + 1)))
        audit_record(action="bus.plan.created", obj=plan, actor=user, actor_label="" if user else "agent:bus",
                     changes={"version": plan.version, "reason": reason, "vehicles": plan.vehicles,
                              "lower_bound": plan.lower_bound, "deadhead_km": plan.deadhead_km})
    return plan


def plan_summary(*, plan: VehiclePlan, with_blocks: bool = True) -> dict:
    """The plan as the JSON `plan_buses --json` prints (blocks: each a list of trip keys, in order)."""
    out = {
        "plan": plan.pk, "feed": plan.feed_id, "date": plan.service_date.isoformat(), "version": plan.version,
        "status": plan.status, "trips": plan.trips, "vehicles": plan.vehicles, "lower_bound": plan.lower_bound,
        "feed_vehicles": plan.feed_vehicles, "deadhead_km": plan.deadhead_km, "deadhead_min": plan.deadhead_min,
        "deadhead_source": plan.deadhead_source, "depot": plan.depot.name if plan.depot_id else None,
        "layover_s": plan.layover_s, "solve_s": plan.solve_s, "baseline_rule": plan.baseline_rule,
        "baseline_vehicles": plan.baseline_vehicles, "baseline_deadhead_km": plan.baseline_deadhead_km,
    }
    if with_blocks:
        _, blocks = plan_blocks(plan=plan)
        out["blocks"] = [b for b in blocks if b]
    return out


# ------------------------------------------------------------------------------------------------ checks


def _editable(plan: VehiclePlan) -> None:
    if not plan.editable:
        raise PlanEditError(f"plan v{plan.version} is {plan.status}: only a draft can be edited "
                            "(re-plan to get a new draft)")


def plan_violations(*, plan: VehiclePlan, ctx: PlanContext | None = None) -> list[str]:
    """What is wrong with the stored plan (coverage, layover), as messages; empty when it is sound."""
    ctx = ctx or _plan_context(plan)
    blocks, keys = plan_blocks(plan=plan)
    return [_named(v.message, blocks) for v in plan_check(trips=ctx.trips, blocks=keys, layover_s=plan.layover_s,
                                                           deadhead=ctx.deadhead)]


def _named(message: str, blocks: list[Block]) -> str:
    """The core numbers blocks by index; people know them by code (B001...)."""
    import re

    return re.sub(r"block (\d+)", lambda m: f"block {blocks[int(m.group(1))].code}"
                  if int(m.group(1)) < len(blocks) else m.group(0), message)


# ------------------------------------------------------------------------------------------------ edits


def _block_get(plan: VehiclePlan, sequence: int) -> Block:
    block = plan.blocks.filter(sequence=sequence).first()
    if block is None:
        raise PlanEditError(f"plan v{plan.version} has no block B{sequence:03d}")
    return block


@transaction.atomic
def plan_trip_move(*, plan: VehiclePlan, trip_key: str, to_block: int, user=None) -> VehiclePlan:
    """Move one trip into another block (by block sequence). Refused, with the reason, when either block is
    locked or the result breaks coverage or layover; the plan is then unchanged."""
    plan = VehiclePlan.objects.select_for_update().get(pk=plan.pk)
    _editable(plan)
    blocks, keys = plan_blocks(plan=plan)
    source = next((b for b, k in zip(blocks, keys) if trip_key in k), None)
    if source is None:
        raise PlanEditError(f"trip {trip_key} is in no block of plan v{plan.version}")
    target = _block_get(plan, to_block)
    if source.pk == target.pk:
        raise PlanEditError(f"trip {trip_key} is already in block {target.code}")
    for b in (source, target):
        if b.locked:
            raise PlanEditError(f"block {b.code} is locked: unlock it before moving trips in or out")
    ctx = _plan_context(plan)
    index = {b.pk: i for i, b in enumerate(blocks)}
    try:
        moved = block_trip_move(trips=ctx.trips, blocks=keys, trip_key=trip_key, to_block=index[target.pk])
    except PlanError as exc:
        raise PlanEditError(str(exc)) from None
    touched = {index[source.pk], index[target.pk]}
    violations = [v for v in plan_check(trips=ctx.trips, blocks=moved, layover_s=plan.layover_s,
                                        deadhead=ctx.deadhead) if v.block is None or v.block in touched]
    if violations:
        raise PlanEditError([f"moving {trip_key} to {target.code} is refused: " + _named(v.message, blocks)
                             for v in violations])
    BlockTrip.objects.filter(block__in=[source, target]).delete()
    _block_rows(plan, ctx.trips, [moved[index[source.pk]], moved[index[target.pk]]],
                [source.sequence, target.sequence], keep={source.sequence: source, target.sequence: target})
    emptied = not moved[index[source.pk]]
    if emptied:
        source.delete()
    _kpis_store(plan, ctx, [m for m in moved if m])
    audit_record(action="bus.plan.trip_moved", obj=plan, actor=user,
                 changes={"trip": trip_key, "from": source.code, "to": target.code, "emptied": emptied})
    return plan


@transaction.atomic
def plan_blocks_lock(*, plan: VehiclePlan, sequences: list[int], locked: bool = True, user=None) -> VehiclePlan:
    """Lock (or unlock) blocks: re-optimising keeps locked blocks exactly as they are."""
    plan = VehiclePlan.objects.select_for_update().get(pk=plan.pk)
    _editable(plan)
    blocks = [_block_get(plan, s) for s in sequences]
    Block.objects.filter(pk__in=[b.pk for b in blocks]).update(locked=locked)
    audit_record(action="bus.plan.blocks_locked" if locked else "bus.plan.blocks_unlocked", obj=plan, actor=user,
                 changes={"blocks": [b.code for b in blocks]})
    return plan


@transaction.atomic
def plan_reoptimise(*, plan: VehiclePlan, user=None) -> VehiclePlan:
    """Keep the locked blocks (with their bus and driver) and re-plan every other trip of the day. Locked
    blocks keep their numbers; the re-solved blocks take the free numbers in order of their first trip.
    Refused when the locked blocks themselves break the rules."""
    plan = VehiclePlan.objects.select_for_update().get(pk=plan.pk)
    _editable(plan)
    blocks, keys = plan_blocks(plan=plan)
    locked = [i for i, b in enumerate(blocks) if b.locked]
    ctx = _plan_context(plan)
    kept_keys = [keys[i] for i in locked]
    bad = plan_check(trips=ctx.trips[ctx.trips["trip_key"].isin({k for b in kept_keys for k in b})],
                     blocks=kept_keys, layover_s=plan.layover_s, deadhead=ctx.deadhead)
    if bad:
        raise PlanEditError(["the locked blocks break the rules: " + _named(v.message, [blocks[i] for i in locked])
                             for v in bad])
    try:
        solved = blocks_reoptimise(trips=ctx.trips, blocks=keys, locked=locked, layover_s=plan.layover_s,
                                   deadhead=ctx.deadhead, depot=ctx.depot, max_wait_s=plan.max_wait_s)
    except PlanError as exc:
        raise PlanEditError(str(exc)) from None
    Block.objects.filter(plan=plan, locked=False).delete()
    used = {blocks[i].sequence for i in locked}
    free = (n for n in itertools.count(1) if n not in used)
    fresh = solved.blocks[len(locked):]
    _block_rows(plan, ctx.trips, fresh, [next(free) for _ in fresh])
    _kpis_store(plan, ctx, solved.blocks)
    audit_record(action="bus.plan.reoptimised", obj=plan, actor=user,
                 changes={"locked": [blocks[i].code for i in locked], "vehicles": plan.vehicles})
    return plan


def _span(block: Block) -> tuple[int, int] | None:
    times = list(block.trips.values_list("start_s", "end_s"))
    return (min(t[0] for t in times), max(t[1] for t in times)) if times else None


@transaction.atomic
def block_assign(*, block: Block, vehicle: str | None = None, driver: str | None = None, user=None) -> Block:
    """Assign a bus and/or a driver to a block (drafts and approved plans; a bus breaks down on the day).
    A bus runs one block a day; a driver may take two blocks only when they do not overlap in time."""
    block = Block.objects.select_for_update().select_related("plan").get(pk=block.pk)
    plan = block.plan
    if plan.status == VehiclePlan.Status.SUPERSEDED:
        raise PlanEditError(f"plan v{plan.version} is superseded: assign on the current plan")
    others = plan.blocks.exclude(pk=block.pk)
    changes = {}
    if vehicle is not None:
        vehicle = vehicle.strip()[:50]
        clash = others.filter(vehicle=vehicle).first() if vehicle else None
        if clash:
            raise PlanEditError(f"bus {vehicle} already runs block {clash.code} of this plan")
        changes["vehicle"] = [block.vehicle, vehicle]
        block.vehicle = vehicle
    if driver is not None:
        driver = driver.strip()[:100]
        mine = _span(block)
        for other in others.filter(driver=driver) if driver else []:
            theirs = _span(other)
            if mine and theirs and mine[0] < theirs[1] + plan.layover_s and theirs[0] < mine[1] + plan.layover_s:
                raise PlanEditError(
                    f"driver {driver} already drives block {other.code} ({seconds_format(theirs[0])}-"
                    f"{seconds_format(theirs[1])}), which overlaps {block.code} ({seconds_format(mine[0])}-"
                    f"{seconds_format(mine[1])})")
        changes["driver"] = [block.driver, driver]
        block.driver = driver
    block.save()
    audit_record(action="bus.block.assigned", obj=block, actor=user, changes=changes)
    return block


@transaction.atomic
def plan_approve(*, plan: VehiclePlan, user=None) -> VehiclePlan:
    """Approve a draft after checking it through (every trip once, layovers kept); the previously approved
    plan of that feed and date is superseded."""
    plan = VehiclePlan.objects.select_for_update().get(pk=plan.pk)
    if plan.status != VehiclePlan.Status.DRAFT:
        raise PlanEditError(f"plan v{plan.version} is {plan.status}; only a draft can be approved")
    problems = plan_violations(plan=plan)
    if problems:
        raise PlanEditError([f"plan v{plan.version} cannot be approved: {p}" for p in problems[:20]])
    VehiclePlan.objects.filter(feed=plan.feed, service_date=plan.service_date,
                               status=VehiclePlan.Status.APPROVED).update(status=VehiclePlan.Status.SUPERSEDED)
    plan.status = VehiclePlan.Status.APPROVED
    plan.approved_at = timezone.now()
    plan.approved_by = user if getattr(user, "is_authenticated", False) else None
    plan.save()
    audit_record(action="bus.plan.approved", obj=plan, actor=user, changes={"version": plan.version})
    return plan


# ------------------------------------------------------------------------------------------------ exports


def plan_csv(*, plan: VehiclePlan) -> str:
    """One row per trip: block, bus, driver, order in block, trip key and id, route, times, end stops."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["block_id", "vehicle", "driver", "locked", "sequence", "trip_key", "trip_id", "route_id",
                     "start_time", "end_time", "first_stop_id", "last_stop_id"])
    for t in BlockTrip.objects.filter(block__plan=plan).select_related("block").order_by("block__sequence", "order"):
        writer.writerow([t.block.code, t.block.vehicle, t.block.driver, int(t.block.locked), t.order, t.trip_key,
                         t.trip_id, t.route_id, seconds_format(t.start_s), seconds_format(t.end_s), t.first_stop_id,
                         t.last_stop_id])
    return buffer.getvalue()


def _times_text(series: pd.Series) -> pd.Series:
    return series.map(lambda s: "" if pd.isna(s) else seconds_format(s))


def plan_gtfs_zip(*, plan: VehiclePlan) -> bytes:
    """A one-day GTFS feed carrying the plan: trips.txt with block_id (frequency departures become trips
    named `trip_id@HH:MM:SS` with their own stop_times), calendar_dates.txt for that day only, and the
    feed's agency, routes, stops and shapes."""
    frames = feed_frames(feed=plan.feed)
    trips = day_trips(feed=plan.feed, service_date=plan.service_date)
    blocks, keys = plan_blocks(plan=plan)
    # The core names blocks by position (B001 = index 0): pad gaps so positions match the block codes.
    width = max([b.sequence for b in blocks], default=0)
    padded: list[list[str]] = [[] for _ in range(width)]
    for b, k in zip(blocks, keys):
        padded[b.sequence - 1] = k
    tables = blocks_gtfs_tables(feed=frames, trips=trips, blocks=padded, prefix="B")
    regular = trips.loc[~trips["frequency_based"], "trip_id"]
    st = frames.stop_times[frames.stop_times["trip_id"].isin(regular)].copy()
    for column in ("arrival_time", "departure_time"):
        st[column] = _times_text(st[column])
    stop_times = pd.concat([st, tables["stop_times.txt"]], ignore_index=True)
    stop_times = stop_times[["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"]]
    day = plan.service_date.strftime("%Y%m%d")
    services = sorted(set(tables["trips.txt"]["service_id"]))
    calendar_dates = pd.DataFrame({"service_id": services, "date": day, "exception_type": 1})
    shapes = frames.shapes
    out = {
        "agency.txt": frames.agency.assign(agency_timezone=frames.agency["agency_timezone"].replace(
            "", plan.feed.agency_timezone or settings.CITY_TIME_ZONE)),
        "routes.txt": frames.routes,
        "stops.txt": frames.stops.drop(columns=["location_type", "parent_station"]),
        "trips.txt": tables["trips.txt"],
        "stop_times.txt": stop_times,
        "calendar_dates.txt": calendar_dates,
    }
    if len(shapes):
        out["shapes.txt"] = shapes
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, table in out.items():
            archive.writestr(name, table.to_csv(index=False))
    return buffer.getvalue()
