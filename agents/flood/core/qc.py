"""Quality control of sensor series, before any rule sees a value.

Two kinds of flags on readings (they never reach the rules, so they never raise alerts):
- `out_of_range`: outside the parameter's physical limits, or outside the sensor's typical range widened
  by `typical_widen` spans (EA publishes a typical range; a real record flood still fits inside).
- `spike`: a jump from the last good reading larger than the series' own robust step scale allows
  (median and IQR of recent steps, never below a physical floor), that comes back within
  `spike_max_len` readings. A jump that does not come back is a level shift or a real rapid rise and is
  accepted; until the series has shown which it is, the jump stays provisionally flagged.

Two kinds of sensor faults (a "sensor fault" notice instead of a flood alert):
- `stuck`: exactly the same value for too long (duration and count), or unchanged while the neighbours
  changed a lot (a blocked rain gauge reading 0 while the gauges around it fill up).
- `silent`: no reading for longer than `silent_factor` x the expected interval, judged at an evaluation time
  that is the latest reading time in the data, never the wall clock.

Everything is judged on the readings' own times, so a replay gives the same flags as the live run did."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .domain import Station, utc

NS_PER_HOUR = 3_600_000_000_000


@dataclass(frozen=True)
class QCSettings:
    """Limits and test parameters for one sensor's series (defaults per parameter: `qc_settings_default`)."""

    parameter: str
    low: float | None = None
    high: float | None = None
    typical_low: float | None = None
    typical_high: float | None = None
    typical_widen: float = 1.0
    # jump test: threshold = max(jump_min, jump_rate_per_hour x gap, jump_relative x |last good|,
    #                            |median step| + jump_k x robust step sigma)
    jump_min: float | None = None
    jump_rate_per_hour: float = 0.0
    jump_relative: float = 0.0
    jump_k: float = 8.0
    scale_window: dt.timedelta = dt.timedelta(hours=24)
    spike_max_len: int = 2
    # stuck: identical values for at least this long and this many readings (a value in `stuck_normal`,
    # like 0 mm of rain, is only stuck when the neighbours disagree)
    stuck_duration: dt.timedelta = dt.timedelta(hours=6)
    stuck_min_readings: int = 8
    stuck_normal: tuple[float, ...] = ()
    neighbour_window: dt.timedelta = dt.timedelta(hours=3)
    neighbour_change: float | None = None
    # silent: no reading for silent_factor x expected_interval (None: the series' median step)
    expected_interval: dt.timedelta | None = None
    silent_factor: float = 3.0

    @property
    def plausible_band(self) -> tuple[float | None, float | None]:
        """(low, high) actually enforced: physical limits tightened by the widened typical range."""
        low, high = self.low, self.high
        if self.typical_low is not None and self.typical_high is not None and self.typical_high > self.typical_low:
            span = self.typical_high - self.typical_low
            wide_low = self.typical_low - self.typical_widen * span
            wide_high = self.typical_high + self.typical_widen * span
            low = wide_low if low is None else max(low, wide_low)
            high = wide_high if high is None else min(high, wide_high)
        return low, high


_DEFAULTS: dict[str, QCSettings] = {
    # Levels are relative to a local datum (can be negative, hundreds of metres on plateau rivers).
    "level": QCSettings(parameter="level", low=-500.0, high=9000.0, jump_min=0.5, jump_rate_per_hour=2.0,
                        neighbour_change=0.3),
    "discharge": QCSettings(parameter="discharge", low=-100_000.0, high=400_000.0, jump_min=5.0,
                            jump_relative=1.0, neighbour_change=None),
    # Rain is bursty by nature, so no jump test; a bucket reading 0 is normal unless neighbours fill up.
    "rainfall": QCSettings(parameter="rainfall", low=0.0, high=300.0, jump_min=None, stuck_normal=(0.0,),
                           neighbour_change=10.0),
    "depth": QCSettings(parameter="depth", low=-5.0, high=500.0, jump_min=20.0, jump_rate_per_hour=120.0,
                        stuck_normal=(0.0,), neighbour_change=15.0),
}


def qc_settings_default(*, parameter: str, station: Station | None = None, **overrides: object) -> QCSettings:
    """Default QC settings for a parameter, with the station's typical range where it publishes one."""
    if parameter not in _DEFAULTS:
        raise ValueError(f"no QC defaults for parameter {parameter!r}")
    settings = _DEFAULTS[parameter]
    if station is not None and station.typical_low is not None and station.typical_high is not None:
        settings = replace(settings, typical_low=station.typical_low, typical_high=station.typical_high)
    return replace(settings, **overrides) if overrides else settings


@dataclass(frozen=True)
class QCFlag:
    """A reading quality control rejects: index in the series, its time and value, why."""

    index: int
    time: dt.datetime
    value: float
    kind: str  # "out_of_range" | "spike"
    reason: str
    provisional: bool = False  # True while the series has not yet shown whether the jump comes back


@dataclass(frozen=True)
class SensorFault:
    """A sensor fault notice: the sensor is `stuck` or `silent` since `since`, judged at `at`."""

    kind: str  # "stuck" | "silent"
    since: dt.datetime
    at: dt.datetime
    reason: str


def times_ns(times: Sequence[dt.datetime] | np.ndarray) -> np.ndarray:
    """Aware datetimes (or datetime64 in UTC) as int64 nanoseconds since the epoch, UTC."""
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ns]").astype(np.int64)
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.integer):
        return times.astype(np.int64)
    return np.array([int(utc(t).timestamp() * 1_000_000) * 1000 for t in times], dtype=np.int64)


def ns_datetime(value: int) -> dt.datetime:
    """int64 nanoseconds (UTC) back to an aware datetime."""
    return dt.datetime.fromtimestamp(int(value) // 1000 / 1_000_000, tz=dt.timezone.utc)


@dataclass
class SeriesQC:
    """Flags for a whole series, with what was known when each reading arrived (for causal replay).

    `flagged_now[i]`: flag of reading i on its own arrival (the jump test only sees the past).
    `flagged[i]`: flag once the series after it is known; `resolved_at[i]`: index of the reading whose
    arrival settled it (i itself for range flags and unflagged readings)."""

    kinds: list[str | None]
    reasons: list[str | None]
    flagged_now: np.ndarray
    flagged: np.ndarray
    resolved_at: np.ndarray
    notes: list[str] = field(default_factory=list)

    def flagged_as_of(self, index: int, now: int) -> bool:
        """Whether reading `index` counted as flagged when reading `now` (>= index) had arrived."""
        if self.resolved_at[index] <= now:
            return bool(self.flagged[index])
        return bool(self.flagged_now[index])


def _step_scale(times: np.ndarray, values: np.ndarray, ok: np.ndarray, window: dt.timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Per reading: median and robust sigma (IQR/1.349) of the steps in the trailing window before it."""
    n = len(values)
    center = np.zeros(n)
    sigma = np.zeros(n)
    idx = np.flatnonzero(ok)
    if len(idx) < 3:
        return center, sigma
    steps = np.diff(values[idx])
    step_times = pd.to_datetime(times[idx][1:], utc=True)
    series = pd.Series(steps, index=step_times)
    roll = series.rolling(pd.Timedelta(window), min_periods=3)
    med = roll.median().to_numpy()
    iqr = (roll.quantile(0.75) - roll.quantile(0.25)).to_numpy() / 1.349
    # the scale used for reading idx[j+1] is the one of the steps strictly before it (shift by one)
    for j in range(1, len(steps)):
        target = idx[j + 1]
        if not np.isnan(med[j - 1]):
            center[target] = med[j - 1]
            sigma[target] = iqr[j - 1]
    return center, sigma


def series_qc_run(*, times: Sequence[dt.datetime] | np.ndarray, values: Sequence[float] | np.ndarray,
                  settings: QCSettings) -> SeriesQC:
    """Range and spike tests over a time-ordered series, with provisional and settled flags."""
    t = times_ns(times)
    x = np.asarray(values, dtype=float)
    n = len(x)
    if len(t) != n:
        raise ValueError(f"{len(t)} times but {n} values")
    if n > 1 and np.any(np.diff(t) < 0):
        raise ValueError("series_qc needs readings in time order")
    kinds: list[str | None] = [None] * n
    reasons: list[str | None] = [None] * n
    now = np.zeros(n, dtype=bool)
    final = np.zeros(n, dtype=bool)
    resolved = np.arange(n)
    low, high = settings.plausible_band
    unit_note = settings.parameter
    gross = np.zeros(n, dtype=bool)
    for i in range(n):
        if not np.isfinite(x[i]):
            gross[i] = True
            reasons[i] = "not a finite number"
        elif low is not None and x[i] < low:
            gross[i] = True
            reasons[i] = f"{x[i]:g} below the plausible {unit_note} limit {low:g}"
        elif high is not None and x[i] > high:
            gross[i] = True
            reasons[i] = f"{x[i]:g} above the plausible {unit_note} limit {high:g}"
        if gross[i]:
            kinds[i] = "out_of_range"
            now[i] = final[i] = True
    if settings.jump_min is None or n < 2:
        return SeriesQC(kinds, reasons, now, final, resolved)

    ok = ~gross
    _center, sigma = _step_scale(t, x, ok, settings.scale_window)
    positive_steps = np.diff(t[ok])
    positive_steps = positive_steps[positive_steps > 0]
    typical_step = float(np.median(positive_steps)) if len(positive_steps) else 0.0
    good: list[int] = []  # accepted readings so far, for the recent trend

    def expected(i: int) -> tuple[float, float]:
        """(value expected at i from the last good reading and the recent trend, allowed deviation)."""
        ref = good[-1]
        gap = t[i] - t[ref]
        steps = max(1.0, gap / typical_step) if typical_step > 0 else 1.0
        recent = good[-4:]
        trend = float(np.median(np.diff(x[recent]))) if len(recent) >= 3 else 0.0
        # a longer gap allows a larger honest change: the trend adds up, the noise as a random walk
        limit = max(settings.jump_min or 0.0, settings.jump_rate_per_hour * gap / NS_PER_HOUR,
                    settings.jump_relative * abs(x[ref]), settings.jump_k * sigma[i] * np.sqrt(steps))
        return x[ref] + trend * steps, limit

    pending: list[int] = []  # a departure not yet resolved as spike (comes back) or shift (stays)
    pending_limit = 0.0
    for i in np.flatnonzero(ok):
        if not good:
            good.append(i)
            continue
        predicted, limit = expected(i)
        if pending:
            # coming back means within the limit that the departure broke, not a wider gap-scaled one
            limit = min(limit, pending_limit)
        deviation = x[i] - predicted
        if abs(deviation) <= limit:
            for p in pending:  # it came back: everything since the departure was a spike
                final[p] = True
                resolved[p] = i
            pending = []
            good.append(i)
            continue
        now[i] = True
        kinds[i] = "spike"
        reasons[i] = (f"{x[i]:g} departs by {deviation:+.3g} from the {predicted:.4g} expected after the last good "
                      f"reading ({x[good[-1]]:g}); limit {limit:.3g} for this series")
        if not pending:
            pending_limit = limit
        pending.append(i)
        if len(pending) > settings.spike_max_len:
            # it stayed away: a level shift or a real rapid rise, not a spike
            for p in pending:
                final[p] = False
                resolved[p] = i
                kinds[p] = reasons[p] = None
            good.extend(pending)
            pending = []
    for p in pending:  # the series ends before these could show either way: still suspect
        final[p] = True
        resolved[p] = n
    return SeriesQC(kinds, reasons, now, final, resolved)


def series_qc(*, times: Sequence[dt.datetime] | np.ndarray, values: Sequence[float] | np.ndarray,
              settings: QCSettings) -> list[QCFlag]:
    """The readings QC rejects in a time-ordered series, judged with everything the series contains.

    A jump at the end of the series that has not yet had the chance to come back is reported with
    `provisional=True`."""
    result = series_qc_run(times=times, values=values, settings=settings)
    t = times_ns(times)
    x = np.asarray(values, dtype=float)
    flags = []
    for i in np.flatnonzero(result.flagged):
        flags.append(QCFlag(index=int(i), time=ns_datetime(t[i]), value=float(x[i]), kind=result.kinds[i] or "spike",
                            reason=result.reasons[i] or "", provisional=bool(result.resolved_at[i] >= len(x))))
    return flags


def stuck_check(*, times_ns_: np.ndarray, values: np.ndarray, end: int, settings: QCSettings,
                neighbours: Sequence[tuple[np.ndarray, np.ndarray]] = ()) -> SensorFault | None:
    """Whether the series ending at index `end` is stuck there (see module doc), as a fault or None.

    `neighbours` are (times_ns, values) of nearby sensors of the same parameter, good readings only."""
    if end < 0:
        return None
    value = values[end]
    start = end
    while start > 0 and values[start - 1] == value:
        start -= 1
    count = end - start + 1
    duration = times_ns_[end] - times_ns_[start]
    since = ns_datetime(times_ns_[start])
    at = ns_datetime(times_ns_[end])
    normal = any(value == v for v in settings.stuck_normal)
    if (not normal and count >= settings.stuck_min_readings
            and duration >= settings.stuck_duration.total_seconds() * 1e9):
        return SensorFault(kind="stuck", since=since, at=at,
                           reason=f"value {value:g} unchanged for {count} readings "
                                  f"({duration / NS_PER_HOUR:.1f} h)")
    window = int(settings.neighbour_window.total_seconds() * 1e9)
    if settings.neighbour_change is None or not neighbours or duration < window:
        return None
    changes = []
    lo = times_ns_[end] - window
    for n_times, n_values in neighbours:
        a = np.searchsorted(n_times, lo, side="right")
        b = np.searchsorted(n_times, times_ns_[end], side="right")
        if b - a < 2:
            continue
        chunk = n_values[a:b]
        changes.append(float(chunk.sum()) if settings.parameter == "rainfall" else float(chunk.max() - chunk.min()))
    if not changes:
        return None
    change = float(np.median(changes))
    if change >= settings.neighbour_change:
        what = "recorded" if settings.parameter == "rainfall" else "changed by"
        return SensorFault(kind="stuck", since=since, at=at,
                           reason=f"value {value:g} unchanged for {duration / NS_PER_HOUR:.1f} h while neighbours "
                                  f"{what} {change:g} (median of {len(changes)}) in the last "
                                  f"{settings.neighbour_window.total_seconds() / 3600:g} h")
    return None


def expected_interval_ns(*, times_ns_: np.ndarray, settings: QCSettings) -> int | None:
    """The interval a sensor is expected to report at: configured, or the median step of its series."""
    if settings.expected_interval is not None:
        return int(settings.expected_interval.total_seconds() * 1e9)
    steps = np.diff(times_ns_)
    steps = steps[steps > 0]
    return int(np.median(steps)) if len(steps) else None


def sensor_health(*, times: Sequence[dt.datetime] | np.ndarray, values: Sequence[float] | np.ndarray,
                  at: dt.datetime, settings: QCSettings,
                  neighbours: Sequence[tuple[Sequence[dt.datetime], Sequence[float]]] = ()) -> list[SensorFault]:
    """Faults of one sensor judged at `at` (the latest reading time in the data, not the wall clock).

    `times`/`values` are the sensor's good readings in time order up to `at`."""
    t = times_ns(times)
    x = np.asarray(values, dtype=float)
    at_ns = times_ns([at])[0]
    upto = int(np.searchsorted(t, at_ns, side="right"))
    t, x = t[:upto], x[:upto]
    faults: list[SensorFault] = []
    if upto == 0:
        return faults
    interval = expected_interval_ns(times_ns_=t, settings=settings)
    if interval and at_ns - t[-1] > settings.silent_factor * interval:
        faults.append(SensorFault(kind="silent", since=ns_datetime(t[-1]), at=utc(at),
                                  reason=f"no reading for {(at_ns - t[-1]) / NS_PER_HOUR:.1f} h (expected every "
                                         f"{interval / 6e10:g} min, fault after x{settings.silent_factor:g})"))
    prepared = [(times_ns(nt), np.asarray(nv, dtype=float)) for nt, nv in neighbours]
    stuck = stuck_check(times_ns_=t, values=x, end=upto - 1, settings=settings, neighbours=prepared)
    if stuck is not None:
        faults.append(stuck)
    return faults
