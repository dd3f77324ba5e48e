"""Which bins a day's plan must visit and which it may visit (prize-collecting routing).

A bin is **mandatory** when it would overflow before the next possible visit: its forecast level when the
*next* service day's shift starts, plus `safety_z` forecast standard deviations, reaches `overflow_level`
(or it is already full). Other bins whose forecast at the end of the plan day is at least `min_fill` are
**optional**, with a prize that grows steeply with that forecast (`prize_full` for a full bin, scaled by
((level - min_fill) / (1 - min_fill)) ** prize_power): the solver empties a half-full bin when it passes
close by, which keeps neighbouring bins in step so later days need fewer streets, and leaves it for
another day when the detour costs more. Emptier bins are left out of the day's problem altogether.

The defaults were tuned with bench/sanitation.py on the demo city (28 simulated days): the next morning as
the horizon saves visits, steep prizes and the stream factor keep neighbouring and same-stream bins in step
(fewer trips, fuller trucks), and one standard deviation of margin keeps overflows below the fixed
schedule's.

A bin of a sparse waste stream (a few biowaste bins among many mixed ones) costs its truck a trip of its
own when visited alone, so taking it while that truck is out anyway is worth more: its prize is scaled by
(all bins / bins of its stream) ** stream_boost (`stream_prize_scales`). This keeps a stream's bins in
step, so its truck goes out every few days instead of daily.

A mandatory bin that is forecast to overflow *during* the plan day gets a deadline (the latest service
start) at that time, no earlier than `min_deadline_s` after the shift starts, so the solver sends a truck
before it overflows where it can.

Demand is what the crew will find at the end of the day (conservative for the truck's capacity), in
litres and kilograms (litres x the waste type's density). Once a first plan says when each bin is
served, `bin_demand_at` re-forecasts it for that time (plus `demand_z` standard deviations), and the day
is planned again with those loads (`domain.routing.day_plan_solve`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .fill import FillState, fill_forecast, fill_forecast_sd, fill_reach_time


@dataclass(frozen=True)
class ChoicePolicy:
    """The knobs of bin choice; prizes are in the routing objective's units (metres driven)."""

    overflow_level: float = 1.0
    safety_z: float = 1.0
    min_fill: float = 0.3
    prize_full: int = 3000
    prize_power: float = 3.0
    stream_boost: float = 1.0
    max_level: float = 1.2
    min_deadline_s: int = 3600
    demand_z: float = 0.6


@dataclass(frozen=True)
class BinOutlook:
    """A bin's forecast for planning a day.

    - `level_end`: expected level at the end of the plan day's shift if not emptied.
    - `level_next`, `sd_next`: expected level and its standard deviation when the next service day's
      shift starts (the earliest a later visit could come).
    - `overflow_s`: seconds after the plan day's midnight when the forecast reaches overflow, if that
      happens during the day.
    """

    id: int | str
    capacity_l: float
    density_kg_l: float
    level_end: float
    level_next: float
    sd_next: float = 0.0
    overflow_s: int | None = None
    prize_scale: float = 1.0


@dataclass(frozen=True)
class BinChoice:
    """A bin in the day's routing problem: required or optional with its prize, its demand and why."""

    id: int | str
    required: bool
    prize: int
    demand_l: int
    demand_kg: int
    level: float
    reason: str
    deadline_s: int | None = None


def bin_prize(*, level: float, policy: ChoicePolicy) -> int:
    """The prize for collecting an optional bin at forecast `level` (0 below `min_fill`)."""
    if level < policy.min_fill:
        return 0
    share = min(1.0, (level - policy.min_fill) / max(1e-9, 1.0 - policy.min_fill))
    return round(policy.prize_full * share**policy.prize_power)


def stream_prize_scales(*, streams: Sequence[str], policy: ChoicePolicy = ChoicePolicy()) -> list[float]:
    """Each bin's prize factor from how many bins share its waste stream (see the module docstring)."""
    counts: dict[str, int] = {}
    for w in streams:
        counts[w] = counts.get(w, 0) + 1
    n = len(streams)
    return [(n / counts[w]) ** policy.stream_boost for w in streams]


def bins_choose(
    *, outlooks: Sequence[BinOutlook], policy: ChoicePolicy = ChoicePolicy(), shift_start_s: int = 6 * 3600
) -> list[BinChoice]:
    """The day's candidates: mandatory bins first reason by reason, then optional ones; empties left out."""
    out: list[BinChoice] = []
    for b in outlooks:
        level = min(max(b.level_end, 0.0), policy.max_level)
        demand_l = round(level * b.capacity_l)
        demand_kg = round(demand_l * b.density_kg_l)
        deadline = None
        if b.level_end >= policy.overflow_level:
            reason = "overflows today" if b.overflow_s is not None else "already full"
            required = True
            if b.overflow_s is not None:
                deadline = max(int(b.overflow_s), shift_start_s + policy.min_deadline_s)
        elif b.level_next + policy.safety_z * b.sd_next >= policy.overflow_level:
            reason, required = "would overflow before the next visit", True
        elif level >= policy.min_fill:
            reason, required = "optional", False
        else:
            continue
        prize = 0 if required else round(bin_prize(level=level, policy=policy) * b.prize_scale)
        if not required and prize <= 0:
            continue
        out.append(
            BinChoice(
                id=b.id,
                required=required,
                prize=prize,
                demand_l=max(demand_l, 1),
                demand_kg=max(demand_kg, 1),
                level=round(level, 3),
                reason=reason,
                deadline_s=deadline,
            )
        )
    return out


def bin_outlook(
    *,
    id: int | str,
    state: FillState,
    capacity_l: float,
    density_kg_l: float,
    day: int,
    shift_start_s: int,
    shift_end_s: int,
    next_day: int,
    policy: ChoicePolicy = ChoicePolicy(),
    prize_scale: float = 1.0,
) -> BinOutlook:
    """A bin's outlook for plan day `day` (a local-days ordinal) from its fill model, the next service day
    being `next_day`; the shift's clock times are seconds after midnight."""
    start, end = day + shift_start_s / 86400, day + shift_end_s / 86400
    t_next = next_day + shift_start_s / 86400  # the earliest a later visit could come
    reach = fill_reach_time(state=state, level=policy.overflow_level, start=start, end=end)
    return BinOutlook(
        id=id,
        capacity_l=capacity_l,
        density_kg_l=density_kg_l,
        level_end=fill_forecast(state=state, at=end),
        level_next=fill_forecast(state=state, at=t_next),
        sd_next=fill_forecast_sd(state=state, at=t_next),
        overflow_s=None if reach is None else round((reach - day) * 86400),
        prize_scale=prize_scale,
    )


def bin_demand_at(
    *,
    state: FillState,
    capacity_l: float,
    density_kg_l: float,
    at: float,
    policy: ChoicePolicy = ChoicePolicy(),
) -> tuple[int, int]:
    """What a truck picks up at `at` (local days): the forecast level plus `demand_z` standard deviations
    (a little reserve against a trip over capacity), capped at `max_level`, in litres and kilograms."""
    level = fill_forecast(state=state, at=at) + policy.demand_z * fill_forecast_sd(state=state, at=at)
    litres = max(1, round(min(max(level, 0.0), policy.max_level) * capacity_l))
    return litres, max(1, round(litres * density_kg_l))
