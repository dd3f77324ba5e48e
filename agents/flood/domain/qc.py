"""Quality control of sensor series, before any rule sees a value.

Two kinds of flags on readings (they never reach the rules, so they never raise alerts):
- `out_of_range`: outside the parameter's physical limits, or outside the sensor's typical range widened
  by `typical_widen` spans (EA publishes a typical range; a real record flood still fits inside).
- `spike`: a departure from the value expected after the last good reading (plus the recent trend) that is
  larger than the series' own robust step scale allows (IQR of the past day's steps, never below a
  physical floor) and comes back within `spike_max_len` readings. A departure that does not come back is
  a level shift or a real rapid rise and is accepted; until the series has shown which it is (at most
  `spike_max_len` readings, 30 min at 15-min steps), it is kept from the rules.

Two kinds of sensor faults (a "sensor fault" notice instead of a flood alert):
- `stuck`: exactly the same value for too long (duration and count), or unchanged while the neighbours
  changed a lot (a blocked rain gauge reading 0 while the gauges around it fill up).
- `silent`: no reading for longer than `silent_factor` x the expected interval, judged at an evaluation time
  that is the latest reading time in the data, never the wall clock.

Physically impossible values (`reading_impossible`: negative rain, more rain than the world record for the
interval, a level, discharge or depth outside the sensor's measuring range or the parameter's hard limits)
are refused at ingest already: stored flagged and never read back for a rule. The range test here applies
the same limits, so a file replayed in memory (a drill) keeps them from the rules too.

Everything is judged on the readings' own times, so a replay gives the same flags as the live run did."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .vocabulary import Station, utc

NS_PER_HOUR = 3_600_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_FALSE = np.zeros(1, dtype=bool)


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
    # stuck: identical values for at least this long and this many readings; a run at or below
    # `stuck_normal_max` (0 mm of rain, a dry road) is only stuck when the neighbours disagree
    stuck_duration: dt.timedelta = dt.timedelta(hours=6)
    stuck_min_readings: int = 8
    stuck_normal_max: float | None = None
    neighbour_window: dt.timedelta = dt.timedelta(hours=3)
    neighbour_change: float | None = None
    # silent: no reading for silent_factor x expected_interval (None: the series' median step)
    expected_interval: dt.timedelta | None = None
    silent_factor: float = 3.0

    @property
    def plausible_band(self) -> tuple[float | None, float | None]:
        """(low, high) actually enforced: physical limits tightened by the widened typical range."""
        low, high = self.low, self.high
        if (
            self.typical_low is not None
            and self.typical_high is not None
            and self.typical_high > self.typical_low
        ):
            span = self.typical_high - self.typical_low
            wide_low = self.typical_low - self.typical_widen * span
            wide_high = self.typical_high + self.typical_widen * span
            low = wide_low if low is None else max(low, wide_low)
            high = wide_high if high is None else min(high, wide_high)
        return low, high


# World-record point rainfall (WMO's archive of weather and climate extremes), (minutes, mm), interpolated
# log-log between records: 38 mm in 1 min (Barot, Guadeloupe, 1970), 305 mm in 42 min (Holt, Missouri,
# 1947), 1,144 mm in 12 h and 1,825 mm in 24 h (Foc-Foc, La Reunion, 1966), 2,493 mm in 48 h
# (Cherrapunji, 1995), 3,930 mm in 72 h and 4,936 mm in 96 h (Commerson, La Reunion, 2007). More rain than
# the record for a reading's interval is a broken gauge or a unit mix-up, never weather.
RAINFALL_RECORDS_MM: tuple[tuple[float, float], ...] = (
    (1, 38.0), (42, 305.0), (720, 1144.0), (1440, 1825.0), (2880, 2493.0), (4320, 3930.0),
    (5760, 4936.0),
)
# A rainfall reading whose interval is unknown (a series' first reading, no configured interval) is held to
# the 24-hour record: no gauge reports totals over more than a day.
RAINFALL_UNKNOWN_INTERVAL = dt.timedelta(hours=24)


_RECORD_LOG_MIN = np.log([m for m, _ in RAINFALL_RECORDS_MM])
_RECORD_LOG_MM = np.log([mm for _, mm in RAINFALL_RECORDS_MM])
_RECORD_LAST_SLOPE = float((_RECORD_LOG_MM[-1] - _RECORD_LOG_MM[-2]) / (_RECORD_LOG_MIN[-1] - _RECORD_LOG_MIN[-2]))


def rainfall_records_mm(minutes: np.ndarray) -> np.ndarray:
    """The most rain ever measured in each interval (minutes; NaN: unknown, the 24-hour record), log-log
    between RAINFALL_RECORDS_MM: below a minute the one-minute record, beyond four days the last slope."""
    m = np.where(np.isnan(minutes), RAINFALL_UNKNOWN_INTERVAL.total_seconds() / 60, minutes)
    logm = np.log(np.maximum(m, 1.0))
    logr = np.interp(logm, _RECORD_LOG_MIN, _RECORD_LOG_MM)
    beyond = logm > _RECORD_LOG_MIN[-1]
    logr[beyond] = _RECORD_LOG_MM[-1] + _RECORD_LAST_SLOPE * (logm[beyond] - _RECORD_LOG_MIN[-1])
    return np.exp(logr)


def rainfall_record_mm(*, interval: dt.timedelta | None) -> float:
    """The most rain ever measured in `interval` (None: unknown, the 24-hour record)."""
    minutes = np.nan if interval is None else interval.total_seconds() / 60
    return float(rainfall_records_mm(np.array([minutes]))[0])


def reading_impossible(*, parameter: str, value: float, interval: dt.timedelta | None = None,
                       low: float | None = None, high: float | None = None) -> str | None:
    """Why a value cannot be a real measurement, or None. `low`/`high` are the sensor's measuring range where
    one is configured (otherwise the parameter's hard limits); `interval` is the time a rainfall total covers
    (since the series' previous reading)."""
    if not math.isfinite(value):
        return "not a finite number"
    defaults = _DEFAULTS.get(parameter)
    low = low if low is not None else (defaults.low if defaults else None)
    high = high if high is not None else (defaults.high if defaults else None)
    if parameter == "rainfall":
        record = rainfall_record_mm(interval=interval)
        if value > record and (high is None or record < high):
            span = f"{interval.total_seconds() / 60:g} min" if interval else "a day (interval unknown)"
            return f"{value:g} mm of rain in {span} is above the world record for it ({record:.0f} mm)"
    if low is not None and value < low:
        return f"{value:g} is below the {parameter} limit {low:g}"
    if high is not None and value > high:
        return f"{value:g} is above the {parameter} limit {high:g}"
    return None


_DEFAULTS: dict[str, QCSettings] = {
    # Levels are relative to a local datum (can be negative, hundreds of metres on plateau rivers).
    "level": QCSettings(
        parameter="level", low=-500.0, high=9000.0, jump_min=0.5, jump_rate_per_hour=2.0, neighbour_change=0.3
    ),
    "discharge": QCSettings(
        parameter="discharge",
        low=-100_000.0,
        high=400_000.0,
        jump_min=5.0,
        jump_relative=1.0,
        neighbour_change=None,
    ),
    # Rain is bursty by nature, so no jump test. A bucket reading 0 (or a light, tip-quantised 0.2-1 mm) is
    # normal unless neighbours fill up; the same heavy total four times running is a logger repeating itself.
    # The upper limit is the world record for the reading's interval (`rainfall_record_mm`).
    "rainfall": QCSettings(
        parameter="rainfall",
        low=0.0,
        high=None,
        jump_min=None,
        stuck_duration=dt.timedelta(minutes=45),
        stuck_min_readings=4,
        stuck_normal_max=1.0,
        neighbour_change=10.0,
    ),
    # Standing water can keep one depth for hours, so only the long default run counts as stuck.
    "depth": QCSettings(
        parameter="depth",
        low=-5.0,
        high=500.0,
        jump_min=20.0,
        jump_rate_per_hour=120.0,
        stuck_normal_max=0.0,
        neighbour_change=15.0,
    ),
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
    if isinstance(times, np.ndarray) and times.dtype == np.int64:
        return times  # already so (the live loop's arrays): no copy
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ns]").astype(np.int64)
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.integer):
        return times.astype(np.int64)
    # integer arithmetic: float timestamps can be a microsecond off, and replays must match exactly
    try:
        # aware datetimes subtract across zones correctly; a naive one raises and gets utc()'s message below
        micros = np.fromiter(((t - _EPOCH) // _MICROSECOND for t in times), dtype=np.int64, count=len(times))
    except TypeError:
        micros = np.array([(utc(t) - _EPOCH) // _MICROSECOND for t in times], dtype=np.int64)
    return micros * 1000


def ns_datetime(value: int) -> dt.datetime:
    """int64 nanoseconds (UTC) back to an aware datetime."""
    return _EPOCH + dt.timedelta(microseconds=int(value) // 1000)


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
    # Where the spike test stands after the last reading, so a later call can go on from here
    # (`series_qc_run(resume=...)`): the last good readings (four: the recent trend), the departure not yet
    # resolved as spike or shift, and the limit it broke.
    good: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    pending_limit: float = 0.0
    # The last reading in range, and the one step (ns) between all readings in range when they are evenly
    # spaced (0: they are not, or too few to say): a resumed run's usual new reading needs nothing else.
    last_ok: int = -1
    regular_step: int = 0

    def flagged_as_of(self, index: int, now: int) -> bool:
        """Whether reading `index` counted as flagged when reading `now` (>= index) had arrived."""
        if self.resolved_at[index] <= now:
            return bool(self.flagged[index])
        return bool(self.flagged_now[index])

    def without_first(self, cut: int) -> SeriesQC:
        """The same judgements with the first `cut` readings dropped (indices shift down by `cut`); the
        readings the spike test still refers to (`good`, `pending`) must not be among them."""
        if cut <= 0:
            return self
        if (self.good and self.good[0] < cut) or (self.pending and self.pending[0] < cut):
            raise ValueError("cannot drop readings the spike test still refers to")
        return SeriesQC(
            self.kinds[cut:],
            self.reasons[cut:],
            self.flagged_now[cut:],
            self.flagged[cut:],
            self.resolved_at[cut:] - cut,
            list(self.notes),
            [g - cut for g in self.good],
            [p - cut for p in self.pending],
            self.pending_limit,
            self.last_ok - cut if self.last_ok >= cut else -1,
            self.regular_step,
        )

    def with_calm(self, i: int, *, ok: bool, good: bool, regular: bool = True) -> SeriesQC:
        """These judgements and reading i (the next one) unflagged: in range, and taken as good or not;
        `regular=False`: the series is no longer known to be evenly spaced."""
        return SeriesQC(
            self.kinds + [None],
            self.reasons + [None],
            np.concatenate([self.flagged_now, _FALSE]),
            np.concatenate([self.flagged, _FALSE]),
            np.concatenate([self.resolved_at, [i]]),
            self.notes,
            (self.good + [i])[-4:] if good else self.good,
            self.pending,
            self.pending_limit,
            i if ok else self.last_ok,
            self.regular_step if regular else 0,
        )


def _regular_gap(t: np.ndarray, ok_idx: np.ndarray) -> np.ndarray | None:
    """The typical gap per reading (as `_step_scale` computes it) when every step between good readings is
    the same - most sensors report like clockwork - without the rolling median; None for an irregular
    series, whose gaps need the real rolling window."""
    gap = np.zeros(len(t))
    if len(ok_idx) < 3:
        return gap
    steps = np.diff(t[ok_idx])
    if not (steps[0] > 0 and np.all(steps == steps[0])):
        return None
    gap[ok_idx[2:]] = float(steps[0])  # reading idx[j+1] sees the steps before step j (none for j < 1)
    return gap


def _typical_gaps(t: np.ndarray, ok_idx: np.ndarray, start: int, window: dt.timedelta) -> np.ndarray:
    """The typical gap per reading from `start` on, as `_step_scale` computes it (the median of the gaps
    between good readings that end within the trailing window before the previous good reading), one
    reading at a time: a resumed series judges a few new readings, not the whole window again."""
    gap = np.zeros(len(t))
    ends = t[ok_idx]
    span = int(window.total_seconds() * 1e9)
    for j1 in range(int(np.searchsorted(ok_idx, start)), len(ok_idx)):
        j = j1 - 1  # reading ok_idx[j + 1] sees the steps that end at or before ok_idx[j]
        if j < 1:
            continue
        first = max(1, int(np.searchsorted(ends, ends[j] - span, side="right")))
        gap[ok_idx[j1]] = float(np.median(np.diff(ends[first - 1 : j + 1]).astype(float)))
    return gap


def _step_scale(
    times: np.ndarray, values: np.ndarray, ok: np.ndarray, window: dt.timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """Per reading, from the steps in the trailing window strictly before it: the robust sigma of the
    value steps (IQR / 1.349) and the typical time step (median gap, ns). Only the past is used, so a
    reading is judged on what had arrived by its time."""
    n = len(values)
    sigma = np.zeros(n)
    gap = np.zeros(n)
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return sigma, gap
    steps = pd.Series(np.diff(values[idx]), index=pd.to_datetime(times[idx][1:], utc=True))
    gaps = pd.Series(np.diff(times[idx]).astype(float), index=steps.index).where(lambda g: g > 0)
    roll = steps.rolling(pd.Timedelta(window), min_periods=3)
    iqr = ((roll.quantile(0.75) - roll.quantile(0.25)) / 1.349).to_numpy()
    median_gap = gaps.rolling(pd.Timedelta(window), min_periods=1).median().to_numpy()
    # reading idx[j + 1] uses the steps up to and including step j - 1 (the ones that end before it)
    for j in range(1, len(idx) - 1):
        target = idx[j + 1]
        if not np.isnan(iqr[j - 1]):
            sigma[target] = iqr[j - 1]
        if not np.isnan(median_gap[j - 1]):
            gap[target] = median_gap[j - 1]
    return sigma, gap


def _range_flags(*, t: np.ndarray, x: np.ndarray, settings: QCSettings, start: int, kinds: list, reasons: list,
                 now: np.ndarray, final: np.ndarray) -> np.ndarray:
    """The range test: readings that are not finite, outside the plausible band, or (rainfall) above the
    world record for their interval are flagged for good from `start` on. Returns where it failed."""
    low, high = settings.plausible_band
    unit_note = settings.parameter
    record = _rain_records(t=t, settings=settings)
    with np.errstate(invalid="ignore"):
        gross = ~np.isfinite(x)
        if low is not None:
            gross |= x < low
        if high is not None:
            gross |= x > high
        if record is not None:
            gross |= x > record
    for i in start + np.flatnonzero(gross[start:]):
        if not np.isfinite(x[i]):
            reasons[i] = "not a finite number"
        elif low is not None and x[i] < low:
            reasons[i] = f"{x[i]:g} below the plausible {unit_note} limit {low:g}"
        elif record is not None and x[i] > record[i]:
            reasons[i] = f"{x[i]:g} mm above the world-record rainfall for its interval ({record[i]:.0f} mm)"
        else:
            reasons[i] = f"{x[i]:g} above the plausible {unit_note} limit {high:g}"
        kinds[i] = "out_of_range"
        now[i] = final[i] = True
    return gross


@dataclass
class _JumpTest:
    """What the spike test measures a reading against: the good readings so far (the last four give the
    recent trend), the typical gap between readings and the step scale (computed the first time a reading
    needs it)."""

    t: np.ndarray
    x: np.ndarray
    ok: np.ndarray
    settings: QCSettings
    typical_gap: np.ndarray | None
    good: list[int]
    scale: np.ndarray | None = None

    def sigma_all(self) -> np.ndarray:
        if self.scale is None:
            self.scale, gap = _step_scale(self.t, self.x, self.ok, self.settings.scale_window)
            if self.typical_gap is None:
                self.typical_gap = gap
        return self.scale

    def expected(self, i: int) -> tuple[float, float]:
        """(value expected at i from the last good reading and the recent trend, allowed deviation)."""
        t, x, settings, good = self.t, self.x, self.settings, self.good
        ref = good[-1]
        gap = t[i] - t[ref]
        steps = max(1.0, gap / self.typical_gap[i]) if self.typical_gap[i] > 0 else 1.0
        recent = good[-4:]
        trend = float(np.median(np.diff(x[recent]))) if len(recent) >= 3 else 0.0
        # a longer gap allows a larger honest change: the trend adds up, the noise as a random walk
        limit = max(
            settings.jump_min or 0.0,
            settings.jump_rate_per_hour * gap / NS_PER_HOUR,
            settings.jump_relative * abs(x[ref]),
            settings.jump_k * self.sigma_all()[i] * np.sqrt(steps),
        )
        return x[ref] + trend * steps, limit

    def calm_run(self, cand: np.ndarray) -> int:
        """How many of the readings `cand` pass the jump test one after another, each taken as good
        (`expected` vectorised: the same arithmetic, so the same decisions); stops before the first that
        would not. The step scale is only computed when a reading departs by more than the floor."""
        t, x, settings = self.t, self.x, self.settings
        head = np.asarray(self.good[-4:], dtype=np.int64)
        chain = np.concatenate([head, cand])  # good readings as each candidate sees them
        o = len(head)
        g = np.arange(o, len(chain))
        ref = chain[g - 1]
        gap = t[cand] - t[ref]
        tg = self.typical_gap[cand]
        with np.errstate(divide="ignore", invalid="ignore"):
            steps = np.where(tg > 0, np.maximum(1.0, gap / np.where(tg > 0, tg, 1.0)), 1.0)
        diffs = np.diff(x[chain])
        trend = np.zeros(len(cand))
        three = g >= 4  # the last four good readings: median of their three steps
        if three.any():
            a, b, c = diffs[g[three] - 4], diffs[g[three] - 3], diffs[g[three] - 2]
            trend[three] = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
        two = g == 3  # three good readings: the mean of their two steps
        if two.any():
            trend[two] = (diffs[0] + diffs[1]) / 2
        deviation = x[cand] - (x[ref] + trend * steps)
        floor = np.maximum.reduce([
            np.full(len(cand), settings.jump_min or 0.0),
            settings.jump_rate_per_hour * gap / NS_PER_HOUR,
            settings.jump_relative * np.abs(x[ref]),
        ])
        passes = np.abs(deviation) <= floor
        if not passes.all():
            limit = np.maximum(floor, settings.jump_k * self.sigma_all()[cand] * np.sqrt(steps))
            passes = np.abs(deviation) <= limit
        failing = np.flatnonzero(~passes)
        return int(failing[0]) if len(failing) else len(cand)

    def calm_one(self, i: int) -> bool:
        """Whether reading i passes `calm_run`'s floor test, for a single reading (a live run's usual new
        one) without a dozen array operations around it. False sends it through `calm_run`, which also
        tries the step scale."""
        head = self.good[-4:]
        return _calm_within_floor(head=[float(self.x[j]) for j in head], value=float(self.x[i]),
                                  gap=int(self.t[i]) - int(self.t[head[-1]]), typical_gap=float(self.typical_gap[i]),
                                  settings=self.settings)


def _spikes_judge(*, test: _JumpTest, ok_idx: np.ndarray, start: int, kinds: list, reasons: list, now: np.ndarray,
                  final: np.ndarray, resolved: np.ndarray, pending: list[int],
                  pending_limit: float) -> tuple[list[int], float]:
    """The spike test over the readings the range test let through, from `start` on: a departure is a spike
    when the series comes back within the limit it broke, a level shift when it stays away. Returns the
    departures still unresolved and their limit."""
    x, good, settings = test.x, test.good, test.settings
    pos = int(np.searchsorted(ok_idx, start))
    while pos < len(ok_idx):
        if not good:
            good.append(int(ok_idx[pos]))
            pos += 1
            continue
        if not pending:
            # the calm stretch ahead in one vectorised step; the reading that ends it goes on below
            run = 1 if pos == len(ok_idx) - 1 and test.calm_one(int(ok_idx[pos])) else test.calm_run(ok_idx[pos:])
            good.extend(ok_idx[pos : pos + run].tolist())
            pos += run
            if pos >= len(ok_idx):
                break
        i = int(ok_idx[pos])
        pos += 1
        predicted, limit = test.expected(i)
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
        reasons[i] = (
            f"{x[i]:g} departs by {deviation:+.3g} from the {predicted:.4g} expected after the last good "
            f"reading ({x[good[-1]]:g}); limit {limit:.3g} for this series"
        )
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
    return pending, pending_limit


def series_qc_run(
    *,
    times: Sequence[dt.datetime] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    settings: QCSettings,
    resume: SeriesQC | None = None,
) -> SeriesQC:
    """Range and spike tests over a time-ordered series, with provisional and settled flags.

    `resume` is this function's result for the first readings of the same series: their judgements stand
    and the test goes on from where it stood after them (the live loop, run after run, judges only the new
    readings; the series must still reach back as far as the step scale looks)."""
    t = times_ns(times)
    x = np.asarray(values, dtype=float)
    n = len(x)
    if len(t) != n:
        raise ValueError(f"{len(t)} times but {n} values")
    if n > 1 and np.any(np.diff(t) < 0):
        raise ValueError("series_qc needs readings in time order")
    start = len(resume.flagged) if resume is not None else 0
    if start > n:
        raise ValueError(f"resuming after {start} readings, but the series has {n}")
    if resume is not None and n - start == 1:
        quick = _qc_one_more(resume=resume, t=t, x=x, settings=settings)
        if quick is not None:
            return quick
    fresh = n - start
    kinds: list[str | None] = (resume.kinds if resume is not None else []) + [None] * fresh
    reasons: list[str | None] = (resume.reasons if resume is not None else []) + [None] * fresh
    now = np.zeros(n, dtype=bool)
    final = np.zeros(n, dtype=bool)
    resolved = np.arange(n)
    if resume is not None:
        now[:start], final[:start], resolved[:start] = resume.flagged_now, resume.flagged, resume.resolved_at
    gross = _range_flags(t=t, x=x, settings=settings, start=start, kinds=kinds, reasons=reasons, now=now,
                         final=final)
    if settings.jump_min is None:
        return SeriesQC(kinds, reasons, now, final, resolved)

    ok = ~gross
    ok_idx = np.flatnonzero(ok)
    typical_gap = regular_gap = _regular_gap(t, ok_idx)
    if typical_gap is None and start > 0:
        # an irregular series resumed: the typical gap of the new readings only, not the whole rolling window
        typical_gap = _typical_gaps(t, ok_idx, start, settings.scale_window)
    # accepted readings, for the recent trend
    test = _JumpTest(t=t, x=x, ok=ok, settings=settings, typical_gap=typical_gap,
                     good=list(resume.good) if resume is not None else [])
    if typical_gap is None:
        test.sigma_all()  # an irregular series: the typical gap comes from the same rolling window
    # a departure not yet resolved as spike (comes back) or shift (stays), and the limit it broke
    pending, pending_limit = _spikes_judge(
        test=test, ok_idx=ok_idx, start=start, kinds=kinds, reasons=reasons, now=now, final=final,
        resolved=resolved, pending=list(resume.pending) if resume is not None else [],
        pending_limit=resume.pending_limit if resume is not None else 0.0,
    )
    for p in pending:  # the series ends before these could show either way: still suspect
        final[p] = True
        resolved[p] = n
    regular = len(ok_idx) >= 3 and regular_gap is not None
    return SeriesQC(kinds, reasons, now, final, resolved, good=test.good[-4:], pending=pending,
                    pending_limit=pending_limit, last_ok=int(ok_idx[-1]) if len(ok_idx) else -1,
                    regular_step=int(t[ok_idx[1]] - t[ok_idx[0]]) if regular else 0)


def _rain_records(*, t: np.ndarray, settings: QCSettings) -> np.ndarray | None:
    """For a rainfall series, each reading's world-record bound for the time since the previous reading (the
    first: the configured interval, or unknown); None for other parameters."""
    if settings.parameter != "rainfall" or len(t) == 0:
        return None
    minutes = np.empty(len(t))
    first = settings.expected_interval
    minutes[0] = first.total_seconds() / 60 if first is not None else np.nan
    minutes[1:] = np.diff(t) / 6e10
    return rainfall_records_mm(minutes)


def _qc_one_more(*, resume: SeriesQC, t: np.ndarray, x: np.ndarray, settings: QCSettings) -> SeriesQC | None:
    """`series_qc_run` for one reading after `resume` in the usual case, with Python floats: in range, and
    (with the jump test) evenly spaced after the others, no departure open, and within the floor of the
    calm test. The same decisions as the general path (the same arithmetic as its `calm_one`); None for
    any other case, which the general path then takes."""
    i = len(x) - 1
    if i > 0 and t[i] < t[i - 1]:
        return None  # the general path says what is wrong
    value = float(x[i])
    low, high = settings.plausible_band
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        return None
    if settings.parameter == "rainfall" and i > 0 and value > rainfall_records_mm(
            np.array([(int(t[i]) - int(t[i - 1])) / 6e10]))[0]:
        return None
    if settings.jump_min is None:
        return resume.with_calm(i, ok=True, good=False)
    head = resume.good
    if resume.pending or len(head) < 2 or resume.last_ok < 0:
        return None
    regular = resume.regular_step > 0 and int(t[i]) - int(t[resume.last_ok]) == resume.regular_step
    if regular:
        typical_gap = float(resume.regular_step)
    else:
        typical_gap = _typical_gap_unflagged(resume=resume, t=t, i=i, settings=settings)
        if typical_gap is None:
            return None  # the general path works out the typical gap
    if not _calm_within_floor(head=[float(x[j]) for j in head], value=value, gap=int(t[i]) - int(t[head[-1]]),
                              typical_gap=typical_gap, settings=settings):
        return None
    return resume.with_calm(i, ok=True, good=True, regular=regular)


def _typical_gap_unflagged(*, resume: SeriesQC, t: np.ndarray, i: int, settings: QCSettings) -> float | None:
    """The typical gap at reading i (`_typical_gaps`' median of the gaps in the scale window before the
    previous reading) when that reading and every one its window spans are unflagged, so all of them are in
    range; None otherwise. Sensors whose clocks jitter by a few seconds are never evenly spaced: without
    this, each of their readings took the general path (a tenth of a millisecond each, a fifth of a
    2,000-sensor tick)."""
    last = i - 1
    if resume.last_ok != last or last < 1:
        return None
    span = int(settings.scale_window.total_seconds() * 1e9)
    lo = max(1, int(np.searchsorted(t[:i], int(t[last]) - span, side="right"))) - 1
    if resume.flagged[lo : last + 1].any():
        return None  # a reading out of range may be among them: its gap is not one of the good ones
    return float(np.median(np.diff(t[lo : last + 1]).astype(float)))


def _calm_within_floor(*, head: list[float], value: float, gap: int, typical_gap: float,
                       settings: QCSettings) -> bool:
    """`calm_run`'s floor test for one reading, on Python floats with the same arithmetic: `head` the last
    good values (up to four, oldest first), `gap` ns since the last of them, `typical_gap` as at the reading
    (0: unknown)."""
    steps = max(1.0, gap / typical_gap) if typical_gap > 0 else 1.0
    if len(head) >= 4:
        a, b, c = head[1] - head[0], head[2] - head[1], head[3] - head[2]
        trend = max(min(a, b), min(max(a, b), c))  # the median of the three steps
    elif len(head) == 3:
        trend = ((head[1] - head[0]) + (head[2] - head[1])) / 2
    else:
        trend = 0.0
    deviation = value - (head[-1] + trend * steps)
    floor = max(settings.jump_min or 0.0, settings.jump_rate_per_hour * gap / NS_PER_HOUR,
                settings.jump_relative * abs(head[-1]))
    return abs(deviation) <= floor


def series_qc(
    *, times: Sequence[dt.datetime] | np.ndarray, values: Sequence[float] | np.ndarray, settings: QCSettings
) -> list[QCFlag]:
    """The readings QC rejects in a time-ordered series, judged with everything the series contains.

    A jump at the end of the series that has not yet had the chance to come back is reported with
    `provisional=True`."""
    result = series_qc_run(times=times, values=values, settings=settings)
    t = times_ns(times)
    x = np.asarray(values, dtype=float)
    flags = []
    for i in np.flatnonzero(result.flagged):
        flags.append(
            QCFlag(
                index=int(i),
                time=ns_datetime(t[i]),
                value=float(x[i]),
                kind=result.kinds[i] or "spike",
                reason=result.reasons[i] or "",
                provisional=bool(result.resolved_at[i] >= len(x)),
            )
        )
    return flags


def stuck_check(
    *,
    times_ns_: np.ndarray,
    values: np.ndarray,
    end: int,
    settings: QCSettings,
    neighbours: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    run_start: int | None = None,
    run_start_ns: int | None = None,
) -> SensorFault | None:
    """Whether the series ending at index `end` is stuck there (see module doc), as a fault or None.

    `neighbours` are (times_ns, values) of nearby sensors of the same parameter, good readings only.
    `run_start` is where the run of identical values ending at `end` begins, when the caller knows it
    (`value_run_starts`); otherwise it is found by walking back. A negative `run_start` is a run that began
    before the readings given (a live run keeps only recent ones), at `run_start_ns`."""
    if end < 0:
        return None
    value = values[end]
    if run_start is not None:
        start = run_start
    else:
        start = end
        while start > 0 and values[start - 1] == value:
            start -= 1
    count = end - start + 1
    if start < 0 and run_start_ns is None:
        raise ValueError("a run that began before the readings given needs its run_start_ns")
    first_ns = run_start_ns if start < 0 else int(times_ns_[start])
    duration = times_ns_[end] - first_ns
    since = ns_datetime(first_ns)
    at = ns_datetime(times_ns_[end])
    normal = settings.stuck_normal_max is not None and value <= settings.stuck_normal_max
    if (
        not normal
        and count >= settings.stuck_min_readings
        and duration >= settings.stuck_duration.total_seconds() * 1e9
    ):
        return SensorFault(
            kind="stuck",
            since=since,
            at=at,
            reason=f"value {value:g} unchanged for {count} readings ({duration / NS_PER_HOUR:.1f} h)",
        )
    window = int(settings.neighbour_window.total_seconds() * 1e9)
    if settings.neighbour_change is None or not neighbours or duration < window:
        return None
    changes = []
    lo = times_ns_[end] - window
    for n_times, n_values in neighbours:
        a, b = n_times.searchsorted([lo, times_ns_[end]], side="right")
        if b - a < 2:
            continue
        chunk = n_values[a:b]
        changes.append(
            float(chunk.sum()) if settings.parameter == "rainfall" else float(chunk.max() - chunk.min())
        )
    if not changes:
        return None
    changes.sort()  # the median as np.median takes it: the middle one, or the mean of the middle two
    half = len(changes) // 2
    change = changes[half] if len(changes) % 2 else (changes[half - 1] + changes[half]) / 2
    if change >= settings.neighbour_change:
        what = "recorded" if settings.parameter == "rainfall" else "changed by"
        return SensorFault(
            kind="stuck",
            since=since,
            at=at,
            reason=f"value {value:g} unchanged for {duration / NS_PER_HOUR:.1f} h while neighbours "
            f"{what} {change:g} (median of {len(changes)}) in the last "
            f"{settings.neighbour_window.total_seconds() / 3600:g} h",
        )
    return None


def value_run_starts(values: np.ndarray) -> np.ndarray:
    """For each index, where the run of identical values it belongs to begins (for `stuck_check`)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.ones(n, dtype=bool)
    change[1:] = values[1:] != values[:-1]
    return np.maximum.accumulate(np.where(change, np.arange(n), 0))


def expected_interval_ns(*, times_ns_: np.ndarray, settings: QCSettings) -> int | None:
    """The interval a sensor is expected to report at: configured, or the median step of its series."""
    if settings.expected_interval is not None:
        return int(settings.expected_interval.total_seconds() * 1e9)
    steps = np.diff(times_ns_)
    steps = steps[steps > 0]
    return int(np.median(steps)) if len(steps) else None


def sensor_health(
    *,
    times: Sequence[dt.datetime] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    at: dt.datetime,
    settings: QCSettings,
    neighbours: Sequence[tuple[Sequence[dt.datetime], Sequence[float]]] = (),
) -> list[SensorFault]:
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
        faults.append(
            SensorFault(
                kind="silent",
                since=ns_datetime(t[-1]),
                at=utc(at),
                reason=f"no reading for {(at_ns - t[-1]) / NS_PER_HOUR:.1f} h (expected every "
                f"{interval / 6e10:g} min, fault after x{settings.silent_factor:g})",
            )
        )
    prepared = [(times_ns(nt), np.asarray(nv, dtype=float)) for nt, nv in neighbours]
    stuck = stuck_check(times_ns_=t, values=x, end=upto - 1, settings=settings, neighbours=prepared)
    if stuck is not None:
        faults.append(stuck)
    return faults
