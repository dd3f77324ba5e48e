"""The fixed-schedule baseline the agent is measured against: every bin on fixed weekdays, as often as its
mean fill rate needs to stay below `target` between visits (e.g. two or three times a week).

Service days are Monday to Saturday. The weekday patterns for k visits a week, and the longest gap each
leaves between visits (in days):

    k = 1: one day a week            gap 7
    k = 2: Mon+Thu, Tue+Fri, Wed+Sat  gap 4
    k = 3: Mon+Wed+Fri, Tue+Thu+Sat   gap 3
    k = 6: every service day          gap 2 (Saturday to Monday)

A bin gets the smallest k whose gap times its mean rate stays within `target`; bins with the same k are
spread over that k's patterns so each weekday carries about the same volume (a planner's balancing)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SERVICE_WEEKDAYS = (0, 1, 2, 3, 4, 5)
PATTERNS: dict[int, tuple[tuple[int, ...], ...]] = {
    1: ((0,), (1,), (2,), (3,), (4,), (5,)),
    2: ((0, 3), (1, 4), (2, 5)),
    3: ((0, 2, 4), (1, 3, 5)),
    6: ((0, 1, 2, 3, 4, 5),),
}
MAX_GAP_DAYS = {1: 7, 2: 4, 3: 3, 6: 2}


@dataclass(frozen=True)
class FixedBin:
    """A bin as the fixed schedule sees it: its mean rate (fraction per day) and volume (to balance)."""

    id: int | str
    mean_rate: float
    capacity_l: float = 1.0


def visits_per_week(*, mean_rate: float, target: float = 0.9) -> int:
    """The fewest weekly visits (1, 2, 3 or 6) that keep the mean level under `target` between visits."""
    for k in (1, 2, 3):
        if mean_rate * MAX_GAP_DAYS[k] <= target:
            return k
    return 6


def fixed_schedule_build(*, bins: Sequence[FixedBin], target: float = 0.9) -> dict[int | str, tuple[int, ...]]:
    """Each bin's service weekdays (Monday 0), balancing the expected litres per weekday."""
    load = [0.0] * 7
    out: dict[int | str, tuple[int, ...]] = {}
    # Heaviest first, so the balancing has the small bins left to even things out.
    order = sorted(bins, key=lambda b: (-visits_per_week(mean_rate=b.mean_rate, target=target),
                                        -b.mean_rate * b.capacity_l, str(b.id)))
    for b in order:
        k = visits_per_week(mean_rate=b.mean_rate, target=target)
        litres = b.mean_rate * b.capacity_l * MAX_GAP_DAYS[k]
        best = min(PATTERNS[k], key=lambda p: (max(load[d] for d in p), sum(load[d] for d in p)))
        for d in best:
            load[d] += litres
        out[b.id] = best
    return out


def fixed_due(*, schedule: Mapping[int | str, tuple[int, ...]], weekday: int) -> list[int | str]:
    """The bins the fixed schedule visits on `weekday`."""
    return [bid for bid, days in schedule.items() if weekday in days]


def per_bin(total: float | None, bins: int | None) -> float | None:
    """A plan's total (km) per bin it empties, None without bins: the agent's plan and the fixed schedule
    empty different bins, so per bin emptied they compare like with like where their totals cannot."""
    return round(total / bins, 4) if total is not None and bins else None
