"""The city's practice before the agent, replayed on the same readings: a crew is called out to a zone when
one of its river gauges reaches the warning level or one of its depth sensors the caution depth, read as the
readings arrived, with no quality control and no forecast. A zone's alert ends, as the agent's do, once all
its sensors have stayed below their thresholds for the hold time; the next crossing is a new call-out.

Pure Python: the results statement loads the readings and counts the call-outs here, against the alerts the
agent raised for the same zones and hazards."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ThresholdSeries:
    """One sensor's readings in one zone, with the threshold at which the plain rule calls a crew out."""

    zone: str
    hazard: str
    threshold: float
    times: Sequence[dt.datetime]
    values: Sequence[float]


def threshold_callouts(*, series: Sequence[ThresholdSeries], start: dt.datetime, hold: dt.timedelta) -> int:
    """The call-outs the plain threshold rule makes from `start` on: per zone and hazard, each time the zone
    goes into alert (any of its sensors at or over its threshold). Readings before `start` only set where the
    zone stood (an alert already running then is not a new call-out)."""
    groups: dict[tuple[str, str], list[ThresholdSeries]] = defaultdict(list)
    for s in series:
        groups[(s.zone, s.hazard)].append(s)
    return sum(_zone_callouts(group, start=start, hold=hold) for group in groups.values())


def _zone_callouts(group: list[ThresholdSeries], *, start: dt.datetime, hold: dt.timedelta) -> int:
    readings = sorted((time, i, value >= s.threshold)
                      for i, s in enumerate(group) for time, value in zip(s.times, s.values))
    over: set[int] = set()
    alerting, below_since, count = False, None, 0
    for time, i, is_over in readings:
        (over.add if is_over else over.discard)(i)
        if alerting and below_since is not None and time - below_since >= hold:
            alerting = False  # every sensor held below long enough: that alert ended
        if over:
            if not alerting:
                alerting = True
                count += time >= start
            below_since = None
        elif alerting and below_since is None:
            below_since = time
    return count
