"""The agent's run as one service call, in one of three modes: re-route around a closure (the run was
started by a closure event), review the day's headways (the evening monitor run, or `mode=headways`), or
plan a service day's vehicle blocks. `agent.py` maps each outcome to KPIs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from city_ops.city.models import RoadClosure
from city_ops.core.timeutil import date_parse

from .. import selectors
from ..models import Detour, Feed, VehiclePlan
from .detours import detours_lift, detours_open
from .plans import NoServiceError, plan_create
from .realtime import history_prune, positions_evaluate
from .replay import DayReplay, headways_replay

CLOSURE_EVENTS = ("closure.opened", "closure.lifted")


@dataclass
class PlanRun:
    """A vehicle plan: `plan` is None when there is no feed, or when the day has no service (`refused`)."""

    feed: Feed | None
    day: date
    plan: VehiclePlan | None = None
    refused: str = ""


@dataclass
class HeadwayReview:
    """The day's headways (selectors.headways_day) after evaluating the live feeds, the replay of its
    positions with and without the holding advice, and the history pruned."""

    day: date
    day_stats: dict
    replay: DayReplay
    pruned: int


@dataclass
class ClosureRun:
    """Detours opened (or ended, `lifted`) for a closure; `closure` None when it no longer exists."""

    closure_id: object
    closure: RoadClosure | None
    lifted: bool
    detours: list[Detour] = field(default_factory=list)


def plan_run(*, run, progress: Callable[[int, int, str], None]) -> PlanRun:
    """Plan the run's day (or its `date`) for its feed (or the newest) and store the plan as a draft."""
    params = run.params or {}
    feed = Feed.objects.filter(pk=int(params["feed_id"])).first() if params.get("feed_id") else selectors.feed_latest()
    day = date_parse(params["date"]) if params.get("date") else run.run_date
    if feed is None:
        return PlanRun(feed=None, day=day)
    layover = params.get("layover_min")
    progress(0, 2, f"planning {feed.name} for {day}")
    try:
        plan = plan_create(feed=feed, service_date=day,
                           layover_s=float(layover) * 60.0 if layover not in (None, "") else None,
                           reason=run.reason or "nightly plan", user=run.created_by, run=run)
    except NoServiceError as exc:
        return PlanRun(feed=feed, day=day, refused=str(exc))
    progress(2, 2, "plan stored")
    return PlanRun(feed=feed, day=day, plan=plan)


def headways_review(*, run) -> HeadwayReview:
    """Evaluate what is on the road now, then review the whole day and replay it with and without the
    holding advice (before pruning: the replay reads the day's positions); prune old position history."""
    for feed in selectors.feeds_live():
        positions_evaluate(feed=feed)
    return HeadwayReview(day=run.run_date, day_stats=selectors.headways_day(day=run.run_date),
                         replay=headways_replay(day=run.run_date), pruned=history_prune())


def closure_react(*, closure_id, lifted: bool) -> ClosureRun:
    """Open detours around a closure, or end them when it is lifted."""
    closure = RoadClosure.objects.filter(pk=closure_id).first()
    if closure is None:
        return ClosureRun(closure_id=closure_id, closure=None, lifted=lifted)
    detours = detours_lift(closure=closure) if lifted else detours_open(closure=closure)
    return ClosureRun(closure_id=closure_id, closure=closure, lifted=lifted, detours=detours)


def bus_run(*, run, progress: Callable[[int, int, str], None]) -> PlanRun | HeadwayReview | ClosureRun:
    """The agent's run: the mode follows from what started it."""
    params = run.params or {}
    kind = params.get("event_kind", "")
    if kind in CLOSURE_EVENTS or params.get("closure_id"):
        return closure_react(closure_id=params.get("closure_id"), lifted=kind == "closure.lifted")
    if run.trigger == "monitor" or params.get("mode") == "headways":
        return headways_review(run=run)
    return plan_run(run=run, progress=progress)
