"""Flood rules: each turns one sensor's good readings into the alert level they imply, with the evidence.

- Rainfall: rolling accumulations (1, 3, 6, 12, 24 h) against the China Meteorological Administration
  rainstorm signals (blue >= 50 mm/12 h, yellow >= 50 mm/6 h, orange >= 50 mm/3 h, red >= 100 mm/3 h).
- River level: warning level (警戒水位) and guaranteed level (保证水位) per gauge, plus the rate of rise
  (least-squares line over the recent window) and the forecast time to cross the next threshold.
- Waterlogging depth: caution, road-closure (two consecutive readings), orange and red depths, and when a
  closure may be lifted (below closure minus a margin for a hold time; a dispatcher still confirms).

Every result carries `level` (what the readings imply now) and `hold_level` (what they still support with
the hysteresis margin), so the alert tracker can escalate at once but only step down once the readings are
clearly below a threshold. Rules only look at reading times, never at the wall clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .qc import NS_PER_HOUR, ns_datetime, times_ns
from .vocabulary import Level, Reading, utc

NS_PER_MINUTE = 60_000_000_000


@dataclass(frozen=True)
class RuleResult:
    """The level one rule implies at one reading time, and why."""

    hazard: str  # "rainstorm" | "river_flood" | "waterlogging"
    sensor: str
    rule: str  # which threshold decided, e.g. "rain_3h>=100mm", "level>=warning", "rise_forecast"
    level: Level
    hold_level: Level  # level still supported with the hysteresis margin (>= level)
    time: dt.datetime
    evidence: tuple[str, ...]  # reading keys/ids the decision rests on
    detail: Mapping[str, object] = field(default_factory=dict)
    forecast: bool = False  # the level comes from a forecast, not an observed value
    closure_needed: bool = False  # waterlogging: close the road
    lift_ready: bool = False  # waterlogging: the closure may be lifted (dispatcher confirms)
    valid_for: dt.timedelta | None = None  # how long after its time it counts (None: the tracker's stale_after)


@dataclass(frozen=True)
class SeriesView:
    """One sensor's good readings up to an evaluation time, as arrays (what the rules compute on)."""

    sensor: str
    times: np.ndarray  # int64 ns UTC, ascending
    values: np.ndarray  # float, canonical unit
    keys: Sequence[str]

    @classmethod
    def from_readings(cls, readings: Sequence[Reading], *, at: dt.datetime | None = None) -> SeriesView:
        """A view of readings of one sensor (sorted here), cut at `at` when given."""
        ordered = sorted(readings, key=lambda r: r.time)
        if at is not None:
            ordered = [r for r in ordered if r.time <= utc(at)]
        sensors = {r.sensor for r in ordered}
        if len(sensors) > 1:
            raise ValueError(f"a rule evaluates one sensor at a time, got {sorted(sensors)}")
        return cls(
            sensor=ordered[0].sensor if ordered else "",
            times=times_ns([r.time for r in ordered]),
            values=np.array([r.value for r in ordered], dtype=float),
            keys=[r.key for r in ordered],
        )


def _at_ns(series: SeriesView, at: dt.datetime | None) -> int:
    if at is not None:
        return int(times_ns([at])[0])
    if len(series.times) == 0:
        raise ValueError("no readings to evaluate")
    return int(series.times[-1])


def _at_end(series: SeriesView, at: dt.datetime | None) -> tuple[int, int]:
    """The evaluation time (ns) and how many readings lie at or before it (at least one)."""
    at_ns = _at_ns(series, at)
    end = int(np.searchsorted(series.times, at_ns, side="right"))
    if end == 0:
        raise ValueError(f"no readings of {series.sensor} at or before {ns_datetime(at_ns).isoformat()}")
    return at_ns, end


def _result(
    *,
    hazard: str,
    series: SeriesView,
    at_ns: int,
    rule: str,
    level: Level,
    hold: Level,
    evidence: tuple[str, ...],
    detail: Mapping[str, object],
    forecast: bool = False,
    closure_needed: bool = False,
    lift_ready: bool = False,
) -> RuleResult:
    """A rule's result at `at_ns`; the level it holds is never below the one it implies."""
    return RuleResult(
        hazard=hazard,
        sensor=series.sensor,
        rule=rule,
        level=level,
        hold_level=max(hold, level),
        time=ns_datetime(at_ns),
        evidence=evidence,
        detail=detail,
        forecast=forecast,
        closure_needed=closure_needed,
        lift_ready=lift_ready,
    )


# ----------------------------------------------------------------------------------------------- rainfall


@dataclass(frozen=True)
class RainThreshold:
    """`mm` of rain within `hours` implies `level`."""

    level: Level
    hours: float
    mm: float


CMA_RAINSTORM_SIGNALS: tuple[RainThreshold, ...] = (
    RainThreshold(Level.BLUE, 12, 50.0),
    RainThreshold(Level.YELLOW, 6, 50.0),
    RainThreshold(Level.ORANGE, 3, 50.0),
    RainThreshold(Level.RED, 3, 100.0),
)


@dataclass(frozen=True)
class RainfallSettings:
    """A city's rainstorm thresholds (CMA signals by default) and the accumulation windows reported."""

    thresholds: tuple[RainThreshold, ...] = CMA_RAINSTORM_SIGNALS
    windows_h: tuple[float, ...] = (1, 3, 6, 12, 24)
    margin_mm: float = 5.0  # hysteresis: a level is held until the total is this far below its threshold


def rainfall_accumulations(
    *, series: SeriesView, at_ns: int, windows_h: Sequence[float]
) -> dict[float, float]:
    """Rain in each window (at - hours, at]; a reading's value is the rain of the interval ending at its time."""
    totals = {}
    end = int(np.searchsorted(series.times, at_ns, side="right"))
    for hours in windows_h:
        start = int(np.searchsorted(series.times, at_ns - int(hours * NS_PER_HOUR), side="right"))
        totals[hours] = float(np.sum(series.values[start:end])) if end > start else 0.0
    return totals


def rainfall_rule(
    *, series: SeriesView, settings: RainfallSettings, at: dt.datetime | None = None
) -> RuleResult:
    """The rainstorm signal the accumulations ending at `at` (default: the latest reading) imply."""
    at_ns = _at_ns(series, at)
    windows = sorted(set(settings.windows_h) | {t.hours for t in settings.thresholds})
    totals = rainfall_accumulations(series=series, at_ns=at_ns, windows_h=windows)
    level, hold, rule, window = Level.NONE, Level.NONE, "rain_below_signals", 0.0
    for threshold in settings.thresholds:
        total = totals[threshold.hours]
        if total >= threshold.mm and threshold.level > level:
            level, rule, window = (
                threshold.level,
                f"rain_{threshold.hours:g}h>={threshold.mm:g}mm",
                threshold.hours,
            )
        if total >= threshold.mm - settings.margin_mm:
            hold = max(hold, threshold.level)
    evidence: tuple[str, ...] = ()
    if level > Level.NONE:
        end = int(np.searchsorted(series.times, at_ns, side="right"))
        start = int(np.searchsorted(series.times, at_ns - int(window * NS_PER_HOUR), side="right"))
        evidence = tuple(series.keys[i] for i in range(start, end) if series.values[i] > 0)
    detail = {
        f"rain_{hours:g}h_mm": round(total, 3)
        for hours, total in totals.items()
        if hours in settings.windows_h
    }
    return _result(
        hazard="rainstorm",
        series=series,
        at_ns=at_ns,
        rule=rule,
        level=level,
        hold=hold,
        evidence=evidence,
        detail=detail,
    )


def rainfall_evaluate(
    *, readings: Sequence[Reading], settings: RainfallSettings | None = None, at: dt.datetime | None = None
) -> RuleResult:
    """Rainstorm level from one rain gauge's good readings (see `rainfall_rule`)."""
    return rainfall_rule(
        series=SeriesView.from_readings(readings, at=at), settings=settings or RainfallSettings(), at=at
    )


# ----------------------------------------------------------------------------------------------- river level


@dataclass(frozen=True)
class GaugeSettings:
    """One river gauge's thresholds (m, same datum as its readings) and the rise-forecast settings."""

    warning: float  # 警戒水位
    guaranteed: float  # 保证水位
    orange_fraction: float = 0.5  # orange from warning + fraction x (guaranteed - warning)
    blue_lead: dt.timedelta = dt.timedelta(hours=2)  # blue when the forecast crosses warning within this
    fit_window: dt.timedelta = dt.timedelta(hours=1)
    fit_min_points: int = 3
    min_rise_m_per_h: float = 0.02  # slower rises are treated as flat (noise)
    margin: float = 0.05  # hysteresis in metres

    def __post_init__(self) -> None:
        if self.guaranteed <= self.warning:
            raise ValueError(
                f"guaranteed level {self.guaranteed} must be above the warning level {self.warning}"
            )

    @property
    def thresholds(self) -> tuple[tuple[Level, float], ...]:
        """(level, threshold) pairs from yellow up."""
        orange = self.warning + self.orange_fraction * (self.guaranteed - self.warning)
        return ((Level.YELLOW, self.warning), (Level.ORANGE, orange), (Level.RED, self.guaranteed))


def _level_observed(value: float, gauge: GaugeSettings) -> tuple[Level, str]:
    level, rule = Level.NONE, "level_below_warning"
    names = {Level.YELLOW: "level>=warning", Level.ORANGE: "level>=orange", Level.RED: "level>=guaranteed"}
    for threshold_level, threshold in gauge.thresholds:
        if value >= threshold:
            level, rule = threshold_level, names[threshold_level]
    return level, rule


def level_rule(*, series: SeriesView, gauge: GaugeSettings, at: dt.datetime | None = None) -> RuleResult:
    """The level a river gauge implies at `at` (default: its latest reading), with the rise forecast."""
    at_ns, end = _at_end(series, at)
    latest = float(series.values[end - 1])
    level, rule = _level_observed(latest, gauge)
    hold, _ = _level_observed(latest + gauge.margin, gauge)
    evidence: tuple[str, ...] = (series.keys[end - 1],)
    detail: dict[str, object] = {
        "value_m": latest,
        "warning_m": gauge.warning,
        "guaranteed_m": gauge.guaranteed,
    }

    start = int(
        np.searchsorted(series.times, at_ns - int(gauge.fit_window.total_seconds() * 1e9), side="right")
    )
    forecast = False
    if end - start >= gauge.fit_min_points:
        hours = (series.times[start:end] - at_ns) / NS_PER_HOUR
        slope, intercept = np.polyfit(hours, series.values[start:end], 1)
        detail["rate_m_per_h"] = round(float(slope), 4)
        if slope >= gauge.min_rise_m_per_h:
            upcoming = [(lvl, thr) for lvl, thr in gauge.thresholds if thr > latest]
            if upcoming:
                next_level, next_threshold = upcoming[0]
                eta_h = max(0.0, (next_threshold - float(intercept)) / slope)
                detail.update(
                    next_threshold_m=next_threshold,
                    next_level=next_level.label,
                    eta_minutes=round(eta_h * 60, 1),
                    forecast_crossing=ns_datetime(at_ns + int(eta_h * NS_PER_HOUR)).isoformat(),
                )
                lead_h = gauge.blue_lead.total_seconds() / 3600
                if next_level == Level.YELLOW and eta_h <= lead_h:
                    if level < Level.BLUE:
                        level, rule, forecast = Level.BLUE, "rise_forecast", True
                        evidence = tuple(series.keys[start:end])
                    hold = max(hold, Level.BLUE)
                elif next_level == Level.YELLOW and eta_h <= 1.5 * lead_h:
                    hold = max(hold, Level.BLUE)  # hysteresis on the forecast horizon too
    return _result(
        hazard="river_flood",
        series=series,
        at_ns=at_ns,
        rule=rule,
        level=level,
        hold=hold,
        evidence=evidence,
        detail=detail,
        forecast=forecast,
    )


def level_evaluate(
    *, readings: Sequence[Reading], gauge: GaugeSettings, at: dt.datetime | None = None
) -> RuleResult:
    """River flood level from one gauge's good readings (see `level_rule`)."""
    return level_rule(series=SeriesView.from_readings(readings, at=at), gauge=gauge, at=at)


# ----------------------------------------------------------------------------------------------- waterlogging


@dataclass(frozen=True)
class DepthSettings:
    """Waterlogging depths (cm) of one road point, and when a closure may be lifted."""

    caution_cm: float = 15.0  # blue
    closure_cm: float = 25.0  # yellow + close the road, on `closure_consecutive` readings in a row
    orange_cm: float = 40.0
    red_cm: float = 60.0
    closure_consecutive: int = 2
    lift_margin_cm: float = 5.0  # lift only below closure - margin ...
    lift_hold: dt.timedelta = dt.timedelta(minutes=30)  # ... for this long (then a dispatcher confirms)
    margin_cm: float = 2.0  # hysteresis on levels


def _depth_level(run: Sequence[float], settings: DepthSettings) -> tuple[Level, str]:
    """The level the last readings imply (`run`: the last `closure_consecutive` of them, or fewer)."""
    latest = run[-1]
    if latest >= settings.red_cm:
        return Level.RED, "depth>=red"
    if latest >= settings.orange_cm:
        return Level.ORANGE, "depth>=orange"
    if len(run) >= settings.closure_consecutive and all(v >= settings.closure_cm for v in run):
        return Level.YELLOW, "depth>=closure_x2"
    if latest >= settings.caution_cm:
        return Level.BLUE, "depth>=caution"
    return Level.NONE, "depth_below_caution"


def depth_rule(*, series: SeriesView, settings: DepthSettings, at: dt.datetime | None = None) -> RuleResult:
    """The waterlogging level at `at` (default: the latest reading), closure need and lift readiness."""
    at_ns, end = _at_end(series, at)
    values = series.values[:end]
    run = values[-settings.closure_consecutive :].tolist()
    level, rule = _depth_level(run, settings)
    hold, _ = _depth_level([v + settings.margin_cm for v in run], settings)
    closure_needed = rule == "depth>=closure_x2" or level >= Level.ORANGE
    count = settings.closure_consecutive if rule == "depth>=closure_x2" else 1
    evidence = tuple(series.keys[end - count : end])

    # lift readiness: how long has it stayed below closure - margin without interruption?
    wet = np.flatnonzero(~(values < settings.closure_cm - settings.lift_margin_cm))
    clear_from = int(wet[-1]) + 1 if len(wet) else 0  # the clear run that ends the view starts after it
    detail: dict[str, object] = {"depth_cm": float(values[-1])}
    lift_ready = False
    if clear_from < end:
        # measured from the first clear reading in view: a lower bound when the view starts inside the run
        clear_minutes = (at_ns - series.times[clear_from]) / NS_PER_MINUTE
        detail["clear_minutes"] = round(float(clear_minutes), 1)
        if clear_minutes >= settings.lift_hold.total_seconds() / 60:
            lift_ready = True
            if level == Level.NONE:
                # the readings that show the hold: from the last one at or before its start (citing a dry
                # road's whole day would weigh down every result the tracker keeps)
                held_from = (
                    int(
                        series.times.searchsorted(
                            at_ns - int(settings.lift_hold.total_seconds() * 1e9), side="right"
                        )
                    )
                    - 1
                )
                evidence = tuple(series.keys[max(clear_from, held_from) : end])
    return _result(
        hazard="waterlogging",
        series=series,
        at_ns=at_ns,
        rule=rule,
        level=level,
        hold=hold,
        evidence=evidence,
        detail=detail,
        closure_needed=closure_needed,
        lift_ready=lift_ready,
    )


def depth_evaluate(
    *, readings: Sequence[Reading], settings: DepthSettings | None = None, at: dt.datetime | None = None
) -> RuleResult:
    """Waterlogging level from one depth sensor's good readings (see `depth_rule`)."""
    return depth_rule(
        series=SeriesView.from_readings(readings, at=at), settings=settings or DepthSettings(), at=at
    )
