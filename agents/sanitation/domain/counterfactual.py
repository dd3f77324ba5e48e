"""The counterfactual: the city's fixed weekly schedule (`baseline`) replayed on given days' fills, so what
the agent did can be set against what the old schedule would have done facing the same waste on the same
days.

The fills are each bin's growth per day (fraction of its volume): the caller says where they come from (the
simulator's truth in bench/sanitation.py; for a statement, measured where a sensor or a crew recorded the
level and the fill model's estimate elsewhere). Within a day a bin fills evenly. A bin's level may pass
1.0: the excess is the waste left beside an overflowing bin, and all of it (up to `MAX_LEVEL`) is collected
at the next visit. An overflow is a bin-day on which a bin was over full at some point.

On its weekdays a bin is emptied whatever its level; the trucks' loads are planned from the level at the
start of the day plus half a day at the bin's mean rate, as a fixed schedule knows nothing better. When the
trucks get to each bin is `visit_at`'s answer: a router (the bench routes the day with the agent's solver,
for km and hours), or by default the day's bins spread evenly over the shift, as the crews of the demo's
history do (`shift_spread`)."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .baseline import fixed_due
from .choice import BinChoice
from .fill import FillObservation

MAX_LEVEL = 1.2  # what a crew takes from an overflowing bin at most (the bin and a little beside it)
SHIFT_START_H = 6.25
SHIFT_HOURS = 7.5


@dataclass(frozen=True)
class ReplayBin:
    """A bin as the replay sees it: its volume, its mean fill rate (fraction per day) and its waste's density."""

    id: Hashable
    capacity_l: float
    mean_rate: float
    density_kg_l: float = 0.1


@dataclass(frozen=True)
class DayLevels:
    """One day of levels: at the end of the day, whether each bin was over full at some point, and the level
    each emptied bin had when its truck came (by position)."""

    end: np.ndarray
    overflowed: np.ndarray
    at_visit: dict[int, float] = field(default_factory=dict)


def day_levels(*, start: np.ndarray, growth: np.ndarray, visits: Mapping[int, float], day: int) -> DayLevels:
    """Advance every bin through local day `day` from `start` levels with the day's `growth`; `visits` maps a
    bin's position to the time (local days) it is emptied."""
    overflowed = start > 1.0
    end = start + growth
    at_visit = {}
    for i, t in visits.items():
        frac = min(max(t - day, 0.0), 1.0)
        at_visit[i] = float(start[i] + growth[i] * frac)
        overflowed[i] |= at_visit[i] > 1.0
        end[i] = growth[i] * (1.0 - frac)
    return DayLevels(end=end, overflowed=overflowed | (end > 1.0), at_visit=at_visit)


def shift_spread(*, day: int, ids: Sequence[Hashable]) -> dict[Hashable, float]:
    """`ids` emptied one after another, evenly over the crews' shift (06:15 to 13:45) of `day`."""
    n = max(len(ids), 1)
    return {bid: day + (SHIFT_START_H + SHIFT_HOURS * (j + 0.5) / n) / 24 for j, bid in enumerate(ids)}


def fixed_day_choices(
    *, bins: Sequence[ReplayBin], schedule: Mapping[Hashable, tuple[int, ...]], weekday: int, levels: np.ndarray
) -> list[BinChoice]:
    """The bins the schedule empties on `weekday` (Monday 0), all required, with the loads its trucks are
    planned with."""
    position = {b.id: i for i, b in enumerate(bins)}
    out = []
    for bid in fixed_due(schedule=schedule, weekday=weekday):
        i = position[bid]
        b = bins[i]
        level = min(MAX_LEVEL, max(0.05, float(levels[i]) + b.mean_rate * 0.5))
        litres = max(1, round(level * b.capacity_l))
        out.append(
            BinChoice(
                id=bid,
                required=True,
                prize=0,
                demand_l=litres,
                demand_kg=max(1, round(litres * b.density_kg_l)),
                level=round(level, 3),
                reason="fixed",
            )
        )
    return out


VisitAt = Callable[[int, list[BinChoice]], Mapping[Hashable, float]]
"""(day, the day's choices) -> the time (local days) each chosen bin is emptied."""


def _spread_choices(day: int, choices: list[BinChoice]) -> Mapping[Hashable, float]:
    return shift_spread(day=day, ids=[c.id for c in choices])


@dataclass(frozen=True)
class ReplayDay:
    """What the fixed schedule did on one day: the bins it was due to empty (with their planned loads),
    when each was emptied, the litres collected from each, the bins that overflowed, and every bin's level
    at the end of the day (by position in the replay's bins)."""

    day: int
    choices: list[BinChoice]
    visits: dict[Hashable, float]
    collected_l: dict[Hashable, float]
    overflowed: list[Hashable]
    levels_end: np.ndarray

    @property
    def bins_emptied(self) -> int:
        return len(self.collected_l)


def fixed_day_replay(
    *,
    bins: Sequence[ReplayBin],
    schedule: Mapping[Hashable, tuple[int, ...]],
    day: int,
    levels: np.ndarray,
    growth: np.ndarray,
    visit_at: VisitAt = _spread_choices,
) -> ReplayDay:
    """One local day (an ordinal) of the schedule from `levels` at its start, with that day's `growth`."""
    weekday = (day - 1) % 7
    choices = fixed_day_choices(bins=bins, schedule=schedule, weekday=weekday, levels=levels)
    visits = dict(visit_at(day, choices)) if choices else {}
    position = {b.id: i for i, b in enumerate(bins)}
    got = day_levels(
        start=np.asarray(levels, dtype=float),
        growth=np.asarray(growth, dtype=float),
        visits={position[bid]: t for bid, t in visits.items()},
        day=day,
    )
    collected = {bins[i].id: min(level, MAX_LEVEL) * bins[i].capacity_l for i, level in got.at_visit.items()}
    return ReplayDay(
        day=day,
        choices=choices,
        visits=visits,
        collected_l=collected,
        overflowed=[b.id for b, over in zip(bins, got.overflowed, strict=True) if over],
        levels_end=got.end,
    )


def fixed_schedule_replay(
    *,
    bins: Sequence[ReplayBin],
    schedule: Mapping[Hashable, tuple[int, ...]],
    first_day: int,
    start_levels: np.ndarray,
    growth: Sequence[np.ndarray],
    visit_at: VisitAt = _spread_choices,
) -> list[ReplayDay]:
    """The schedule over consecutive days from `first_day` (an ordinal), one day per row of `growth`
    (each bin's growth that day, in the order of `bins`), from `start_levels`."""
    out = []
    levels = np.asarray(start_levels, dtype=float)
    for k, day_growth in enumerate(growth):
        replayed = fixed_day_replay(
            bins=bins, schedule=schedule, day=first_day + k, levels=levels, growth=day_growth, visit_at=visit_at
        )
        out.append(replayed)
        levels = replayed.levels_end
    return out


# --- the days' fills from what was observed, for a statement ---------------------------------------------

MAX_INTERVAL_DAYS = 7.0  # two observations further apart than this say too little about the days between


@dataclass(frozen=True)
class DayFills:
    """Each bin's growth per day (rows: days from `first_day`; columns: bins), and the share of each bin-day
    that observations covered (1.0: measured all day; 0.0: the fill model's estimate alone)."""

    first_day: int
    growth: np.ndarray
    measured: np.ndarray


def _intervals(observed: Sequence[FillObservation]):
    """(start, end, rate per day) between consecutive observations whose rise can be read off them."""
    for a, b in zip(observed, observed[1:], strict=False):
        start = 0.0 if a.emptied else a.level
        span = b.at - a.at
        if start is None or b.level is None or not 0 < span <= MAX_INTERVAL_DAYS or b.level < start:
            continue  # an unknown level, or a fall without a recorded emptying: nothing measured
        yield a.at, b.at, (b.level - start) / span


def day_fills(*, observed: Sequence[Sequence[FillObservation]], estimate: np.ndarray, first_day: int) -> DayFills:
    """Growth per day and bin: measured where consecutive observations (sensor readings, crews' recorded
    levels; a collection empties the bin after its level) cover the day (the rise between them
    spread evenly over the time between), the fill model's `estimate` (days x bins) for the rest of it."""
    days, n = estimate.shape
    measured_growth = np.zeros((days, n))
    covered = np.zeros((days, n))
    for i, obs in enumerate(observed):
        for t0, t1, rate in _intervals(sorted(obs, key=lambda o: o.at)):
            for d in range(max(int(np.floor(t0)), first_day), min(int(np.ceil(t1)), first_day + days)):
                overlap = min(t1, d + 1) - max(t0, d)
                if overlap > 0:
                    measured_growth[d - first_day, i] += rate * overlap
                    covered[d - first_day, i] += overlap
    covered = np.minimum(covered, 1.0)
    return DayFills(first_day=first_day, growth=measured_growth + (1.0 - covered) * estimate, measured=covered)


def visits_replay(
    *, start_levels: np.ndarray, fills: DayFills, visits: Sequence[Mapping[int, float]]
) -> list[DayLevels]:
    """The bins' levels day by day under given visits (per day: bin position -> time emptied, local days),
    e.g. the collections crews recorded, on the same fills the fixed schedule is replayed on."""
    out = []
    levels = np.asarray(start_levels, dtype=float)
    for k, day_visits in enumerate(visits):
        got = day_levels(start=levels, growth=fills.growth[k], visits=day_visits, day=fills.first_day + k)
        out.append(got)
        levels = got.end
    return out
