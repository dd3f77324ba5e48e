"""Readings in, alert events out: quality control, rules and the alert tracker run in reading-time order.

This is the one loop both the live agent and a replay use. Each reading is judged only on what had
arrived by its time (QC flags as known then, rule windows ending at it), sensor silence is judged at the
latest reading time seen so far, and dispatcher inputs (acknowledgements, closure-lift confirmations) are
applied at their own times. Readings are put in a canonical order first, so the same readings in any order
give the same event log."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import heapq
import itertools
from collections.abc import Mapping, Sequence
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .alerts import AlertEvent, AlertStateError, AlertTracker, TrackerSettings
from .qc import (
    QCSettings,
    SensorFault,
    SeriesQC,
    ns_datetime,
    qc_settings_default,
    series_qc_run,
    stuck_check,
    times_ns,
    value_run_starts,
)
from .rules import (
    DepthSettings,
    GaugeSettings,
    RainfallSettings,
    RuleResult,
    SeriesView,
    depth_rule,
    level_rule,
    rainfall_rule,
)
from .vocabulary import CANONICAL_UNITS, HAZARD_FOR_PARAMETER, Reading, utc

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class SensorConfig:
    """How one sensor is watched: its zone, QC settings and the settings of its parameter's rule.

    A level sensor without `gauge` (or a discharge sensor) is quality-controlled but raises no alerts."""

    sensor: str
    parameter: str
    zone: str
    qc: QCSettings | None = None
    gauge: GaugeSettings | None = None
    rain: RainfallSettings | None = None
    depth: DepthSettings | None = None
    neighbours: tuple[str, ...] = ()  # same-parameter sensors nearby, for the stuck-sensor check
    valid_for: dt.timedelta | None = None  # how long a result counts (a daily mean's); None: the tracker's

    @property
    def hazard(self) -> str:
        """The hazard (alert key part) this sensor's rule feeds."""
        return HAZARD_FOR_PARAMETER[self.parameter]

    @property
    def qc_settings(self) -> QCSettings:
        """The QC settings in force (the parameter's defaults unless given)."""
        return self.qc or qc_settings_default(parameter=self.parameter)


@dataclass(frozen=True)
class SeriesReadings:
    """One sensor's readings as arrays, strictly increasing in time: what a database loader has at hand,
    without a Reading object per value (a live run's context holds hundreds of thousands). Readings are
    made from it only where they are cited (evidence, QC records)."""

    sensor: str
    parameter: str
    times_ns: np.ndarray  # int64 nanoseconds since the epoch, UTC
    values: np.ndarray  # canonical unit
    key_sensor: str | None = None  # the sensor evidence keys name (default `sensor`; a zone copy names the real one)


@dataclass(frozen=True)
class InputEvent:
    """A dispatcher's action at a time: "acknowledge" an alert or "closure_lift_confirm" a proposed lift."""

    time: dt.datetime
    kind: str
    zone: str
    actor: str
    hazard: str = "waterlogging"


@dataclass(frozen=True)
class QCRecord:
    """A reading that quality control kept away from the rules."""

    sensor: str
    parameter: str
    time: dt.datetime
    value: float
    kind: str
    reason: str
    key: str


@dataclass(frozen=True)
class LeadTime:
    """How long before a gauge actually crossed its warning level the alert was raised (KPI)."""

    zone: str
    sensor: str
    alert_id: str
    raised_at: dt.datetime
    crossed_at: dt.datetime
    minutes: float
    by_forecast: bool


@dataclass
class ReplayResult:
    """Events, QC records, lead times and the tracker (final state) of one replay."""

    events: list[AlertEvent]
    qc: list[QCRecord]
    lead_times: list[LeadTime]
    tracker: AlertTracker
    evaluated_at: dt.datetime | None
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count of readings not used
    input_errors: list[str] = field(default_factory=list)  # recorded inputs that did not fit the state
    carry: ReplayCarry | None = None  # where each sensor stands, for the next run (`readings_replay(carry=)`)
    # per sensor, the time from which `qc` lists every flagged reading (flags before it did not change)
    qc_from: dict[str, dt.datetime] = field(default_factory=dict)

    def event_log(self) -> list[dict[str, object]]:
        """The events as JSON-friendly dicts (what determinism is checked on)."""
        return [event.as_dict() for event in self.events]


@dataclass
class ReplayCarry:
    """Where each sensor stood at the end of a run, for the next run of the live loop: its readings as far
    back as later rules, QC and stuck checks look, the QC state, stuck and silent, the last valid value.
    `readings_replay(carry=...)` then takes only the readings after each sensor's last one and gives the
    events, flags and state one replay over all the readings would."""

    tracks: dict[str, _Track]
    configs: dict[str, SensorConfig]
    auto: list[tuple[int, str, str]] = field(default_factory=list)  # automatic confirmations not yet due

    def last_times(self) -> dict[str, int]:
        """Per sensor, the time (int64 ns, UTC) of the last reading it holds: the next run starts after it."""
        return {sensor: int(track.times[-1]) for sensor, track in self.tracks.items()}

    def held(self) -> dict[str, tuple[dt.datetime, dt.datetime, int]]:
        """Per sensor, the first and last time of the readings it holds, and how many: a caller checks that
        no reading has come in among them since (a backfill) before going on from it."""
        return {
            sensor: (ns_datetime(int(track.times[0])), ns_datetime(int(track.times[-1])), len(track.times))
            for sensor, track in self.tracks.items()
        }


@dataclass
class _Track:
    config: SensorConfig
    readings: list[Reading] | None  # None when built from SeriesReadings: made on demand by `reading`
    times: np.ndarray
    values: np.ndarray
    qc: SeriesQC
    intervals: np.ndarray  # expected reporting interval (ns) as known at each reading
    run_starts: np.ndarray  # where each reading's run of identical values begins (stuck check)
    stuck: bool = False
    silent: bool = False
    last_valid: float | None = None
    key_sensor: str | None = None
    run_head_ns: int = 0  # when the run of identical values that began before times[0] began (after a trim)
    window_ns: int = 0  # how far back the rule looks (0: not yet worked out)
    keep_ns: int = 0  # how far back anything looks: what a carry keeps
    keys: dict[int, str] = field(default_factory=dict)  # evidence keys made so far, by reading time

    def __post_init__(self) -> None:
        if not self.window_ns:
            settings = self.config.qc_settings
            self.window_ns = _window(self.config)
            self.keep_ns = max(self.window_ns, int(settings.scale_window.total_seconds() * NS_PER_SECOND),
                               int(settings.neighbour_window.total_seconds() * NS_PER_SECOND))

    def extended(self, times: np.ndarray, values: np.ndarray, readings: list[Reading] | None) -> _Track:
        """The track with later readings appended: QC, intervals and value runs go on from where they
        stood; nothing already judged is judged again."""
        if (readings is None) != (self.readings is None):
            raise ValueError(f"sensor {self.config.sensor!r} must come the same way (readings or series) each run")
        if times[0] <= self.times[-1]:
            raise ValueError(f"readings of {self.config.sensor!r} must come after the ones the carry holds")
        n0 = len(self.times)
        all_times = np.concatenate([self.times, times])
        all_values = np.concatenate([self.values, values])
        settings = self.config.qc_settings
        # the runs of identical values in the new readings; one that continues the last run keeps its start
        if len(values) == 1:
            tail = np.array([self.run_starts[-1] if values[0] == self.values[-1] else n0], dtype=np.int64)
        else:
            tail = value_run_starts(all_values[n0 - 1 :]) + (n0 - 1)
            tail[tail == n0 - 1] = self.run_starts[-1]
            tail = tail[1:]
        return _Track(
            config=self.config,
            readings=None if readings is None else self.readings + readings,
            times=all_times,
            values=all_values,
            qc=series_qc_run(times=all_times, values=all_values, settings=settings, resume=self.qc),
            intervals=np.concatenate([self.intervals, _intervals(all_times, settings, start=n0)]),
            run_starts=np.concatenate([self.run_starts, tail]),
            stuck=self.stuck,
            silent=self.silent,
            last_valid=self.last_valid,
            key_sensor=self.key_sensor,
            run_head_ns=self.run_head_ns,
            window_ns=self.window_ns,
            keep_ns=self.keep_ns,
            keys=self.keys,
        )

    def trimmed(self) -> _Track:
        """The track without the readings no later reading's rule, QC or stuck check looks back to."""
        # one reading before the horizon stays: the step into the window counts for the step scale
        cut = int(np.searchsorted(self.times, int(self.times[-1]) - self.keep_ns, side="right")) - 1
        cut = min(cut, len(self.times) - INTERVAL_STEPS - 1, *self.qc.good[:1], *self.qc.pending[:1])
        if cut < TRIM_SLACK:
            return self  # a few readings too many cost less than copying the rest every run
        head = int(self.run_starts[cut])
        first = int(self.times[cut])
        return _Track(
            config=self.config,
            readings=None if self.readings is None else self.readings[cut:],
            times=self.times[cut:],
            values=self.values[cut:],
            qc=self.qc.without_first(cut),
            intervals=self.intervals[cut:],
            run_starts=self.run_starts[cut:] - cut,
            stuck=self.stuck,
            silent=self.silent,
            last_valid=self.last_valid,
            key_sensor=self.key_sensor,
            run_head_ns=int(self.times[head]) if head >= 0 else self.run_head_ns,
            window_ns=self.window_ns,
            keep_ns=self.keep_ns,
            keys={t: k for t, k in self.keys.items() if t >= first},
        )

    def key(self, i: int) -> str:
        """The evidence key of reading i (without making the Reading when the track holds arrays)."""
        if self.readings is not None:
            return self.readings[i].key
        t = int(self.times[i])
        key = self.keys.get(t)
        if key is None:  # a dry road's evidence cites the same recent readings run after run
            key = self.keys[t] = f"{self.key_sensor or self.config.sensor}:{self.config.parameter}:" \
                                 f"{ns_datetime(t).isoformat()}"
        return key

    def reading(self, i: int) -> Reading:
        """Reading i of the track (made from the arrays when the track came as SeriesReadings)."""
        if self.readings is not None:
            return self.readings[i]
        key_sensor = self.key_sensor or self.config.sensor
        time = ns_datetime(int(self.times[i]))
        return Reading(
            sensor=self.config.sensor,
            parameter=self.config.parameter,
            time=time,
            value=float(self.values[i]),
            unit=CANONICAL_UNITS[self.config.parameter],
            id=None if key_sensor == self.config.sensor else f"{key_sensor}:{self.config.parameter}:{time.isoformat()}",
        )


class _Keys(SequenceABC):
    """Evidence keys of some of a track's readings, made only when a rule cites them (most readings of a
    long context never are, and making a key formats a time)."""

    __slots__ = ("index", "track")

    def __init__(self, track: _Track, index: np.ndarray | range) -> None:
        self.track, self.index = track, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item):  # type: ignore[override]
        if isinstance(item, slice):
            return [self.track.key(int(i)) for i in self.index[item]]
        return self.track.key(int(self.index[item]))


def _window(config: SensorConfig) -> int:
    """How far back (ns) a rule needs to see."""
    if config.parameter == "rainfall":
        settings = config.rain or RainfallSettings()
        hours = max(list(settings.windows_h) + [t.hours for t in settings.thresholds])
        return int(hours * 3600 * NS_PER_SECOND)
    if config.parameter == "depth":
        settings = config.depth or DepthSettings()
        return int(max(6 * 3600, 4 * settings.lift_hold.total_seconds()) * NS_PER_SECOND)
    if config.gauge is not None:
        return int(config.gauge.fit_window.total_seconds() * NS_PER_SECOND) + NS_PER_SECOND
    return 3600 * NS_PER_SECOND


def _evaluate(track: _Track, k: int) -> RuleResult | None:
    config = track.config
    lo = int(np.searchsorted(track.times, track.times[k] - track.window_ns, side="right"))
    qc = track.qc
    if not (qc.flagged[lo : k + 1].any() or qc.flagged_now[lo : k + 1].any()):
        # nothing in the window was ever flagged (the usual case): the window itself, without copies
        view = SeriesView(sensor=config.sensor, times=track.times[lo : k + 1], values=track.values[lo : k + 1],
                          keys=_Keys(track, range(lo, k + 1)))
    else:
        # each reading's flag as it was known when reading k arrived (see SeriesQC.flagged_as_of)
        known = qc.resolved_at[lo : k + 1] <= k
        flagged = np.where(known, qc.flagged[lo : k + 1], qc.flagged_now[lo : k + 1])
        keep = lo + np.flatnonzero(~flagged)
        view = SeriesView(
            sensor=config.sensor, times=track.times[keep], values=track.values[keep], keys=_Keys(track, keep)
        )
    if config.parameter == "rainfall":
        return rainfall_rule(series=view, settings=config.rain or RainfallSettings())
    if config.parameter == "depth":
        return depth_rule(series=view, settings=config.depth or DepthSettings())
    if config.parameter == "level" and config.gauge is not None:
        return level_rule(series=view, gauge=config.gauge)
    return None


INTERVAL_STEPS = 20  # a sensor's usual interval: the median of its last 20 steps
TRIM_SLACK = 64  # a carried track drops old readings in batches of at least this many


def _intervals(times: np.ndarray, settings: QCSettings, start: int = 0) -> np.ndarray:
    """The expected reporting interval (ns) as known at each reading from `start` on: configured, or the
    median of the last 20 steps up to it (0 while unknown)."""
    if settings.expected_interval is not None:
        return np.full(len(times) - start, int(settings.expected_interval.total_seconds() * NS_PER_SECOND))
    if start > 0:
        # a few new readings of a resumed track: the same medians, without a rolling pass over the rest
        steps = np.diff(times).astype(float)
        return np.array([np.median(steps[max(0, i - INTERVAL_STEPS) : i]) for i in range(start, len(times))],
                        dtype=np.int64)
    steps = pd.Series(np.diff(times).astype(float)).where(lambda v: v > 0)
    rolling = steps.rolling(INTERVAL_STEPS, min_periods=1).median().fillna(0).to_numpy()
    return np.concatenate([[0], rolling]).astype(np.int64)


def _readings_by_sensor(
    readings: Sequence[Reading], configs: Mapping[str, SensorConfig], skipped: dict[str, int]
) -> dict[str, list[Reading]]:
    """The readings of configured sensors, by sensor (the others counted in `skipped`)."""
    by_sensor: dict[str, list[Reading]] = {}
    for reading in readings:
        config = configs.get(reading.sensor)
        if config is None or config.parameter != reading.parameter:
            skipped["unconfigured sensor"] = skipped.get("unconfigured sensor", 0) + 1
            continue
        by_sensor.setdefault(reading.sensor, []).append(reading)
    return by_sensor


def _series_by_sensor(
    series: Sequence[SeriesReadings],
    configs: Mapping[str, SensorConfig],
    by_sensor: Mapping[str, list[Reading]],
    skipped: dict[str, int],
) -> dict[str, SeriesReadings]:
    """The series of configured sensors, by sensor; a sensor comes one way only (readings or one series)."""
    arrays: dict[str, SeriesReadings] = {}
    for item in series:
        config = configs.get(item.sensor)
        if config is None or config.parameter != item.parameter:
            skipped["unconfigured sensor"] = skipped.get("unconfigured sensor", 0) + len(item.times_ns)
            continue
        if item.sensor in by_sensor or item.sensor in arrays:
            raise ValueError(f"sensor {item.sensor!r} is given twice (as readings and series, or two series)")
        arrays[item.sensor] = item
    return arrays


def _in_order(ordered: list[Reading], skipped: dict[str, int]) -> list[Reading]:
    """A sensor's readings in canonical order, the first of equal times kept (readings usually come in
    time order already)."""
    if not any(b.time <= a.time for a, b in itertools.pairwise(ordered)):
        return ordered
    unique: dict[dt.datetime, Reading] = {}
    for reading in sorted(ordered, key=lambda r: (r.time, r.row, r.value)):
        if reading.time in unique:
            skipped["duplicate time"] = skipped.get("duplicate time", 0) + 1
            continue
        unique[reading.time] = reading
    return list(unique.values())


def _sensor_arrays(
    sensor: str,
    by_sensor: Mapping[str, list[Reading]],
    arrays: Mapping[str, SeriesReadings],
    skipped: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, list[Reading] | None, str | None] | None:
    """A sensor's times, values, readings (None for a series) and evidence-key sensor; None for an empty
    series."""
    if sensor not in arrays:
        ordered = _in_order(by_sensor[sensor], skipped)
        return times_ns([r.time for r in ordered]), np.array([r.value for r in ordered], dtype=float), ordered, None
    item = arrays[sensor]
    times = np.asarray(item.times_ns, dtype=np.int64)
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        raise ValueError(f"series of {sensor!r} must be strictly increasing in time")
    if len(times) == 0:
        return None
    return times, np.asarray(item.values, dtype=float), None, item.key_sensor


def _tracks_built(
    *,
    by_sensor: Mapping[str, list[Reading]],
    arrays: Mapping[str, SeriesReadings],
    configs: Mapping[str, SensorConfig],
    carried: Mapping[str, _Track],
    skipped: dict[str, int],
) -> tuple[dict[str, _Track], dict[str, int], dict[str, int]]:
    """Every sensor's track (a carried one extended with its new readings), where each track's readings
    not yet stepped through start, and where its flags may have changed (new readings, departures still
    open)."""
    tracks: dict[str, _Track] = {}
    start_at: dict[str, int] = {sensor: len(track.times) for sensor, track in carried.items()}
    qc_start: dict[str, int] = {}
    for sensor in sorted([*by_sensor, *arrays]):
        got = _sensor_arrays(sensor, by_sensor, arrays, skipped)
        if got is None:
            continue
        times, values, ordered, key_sensor = got
        old = carried.get(sensor)
        if old is not None:
            tracks[sensor] = old.extended(times, values, ordered)
            qc_start[sensor] = min([len(old.times), *old.qc.pending])
            continue
        settings = configs[sensor].qc_settings
        tracks[sensor] = _Track(
            config=configs[sensor],
            readings=ordered,
            times=times,
            values=values,
            qc=series_qc_run(times=times, values=values, settings=settings),
            intervals=_intervals(times, settings),
            run_starts=value_run_starts(values),
            key_sensor=key_sensor,
        )
        start_at[sensor] = qc_start[sensor] = 0
    for sensor, track in carried.items():
        if sensor not in tracks:
            tracks[sensor] = copy.copy(track)  # no new readings: a copy, as the run changes its state (silent)
    return tracks, start_at, qc_start


def _first_new(
    tracks: Mapping[str, _Track], start_at: Mapping[str, int], since_ns: int | None, given: Mapping[str, int]
) -> dict[str, int]:
    """Each sensor's first reading after its own mark: the first one this run judges."""
    new_at: dict[str, int] = {}
    for sensor, track in tracks.items():
        first, mark = start_at.get(sensor, 0), given.get(sensor, since_ns)
        if mark is not None and first < len(track.times) and track.times[first] <= mark:
            first = max(first, int(np.searchsorted(track.times, mark, side="right")))
        new_at[sensor] = first
    return new_at


def _timeline(tracks: Mapping[str, _Track], ranges: Mapping[str, range]) -> list[tuple[int, str, int]]:
    """(time ns, sensor, reading index) of each track's readings in its range, in time order."""
    return sorted((int(track.times[k]), sensor, k) for sensor, track in tracks.items() for k in ranges[sensor])


@dataclass
class _Run:
    """One replay's moving parts: the tracks, the tracker, the dispatcher inputs still to apply, the heaps of
    automatic confirmations and silence deadlines, and what the run has noted."""

    tracker: AlertTracker
    tracks: dict[str, _Track]
    horizon_ns: int | None  # the latest reading time earlier runs judged: inputs and silence up to it are settled
    pending_inputs: list[InputEvent]
    auto: list[tuple[int, str, str]]  # (due ns, zone, hazard) heap of automatic confirmations
    auto_confirm_after: dt.timedelta | None
    auto_actor: str
    input_pos: int = 0
    deadlines: list[tuple[int, str, int]] = field(default_factory=list)  # (deadline ns, sensor, index) heap
    lead_times: list[LeadTime] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)
    track_last: dict[str, int] = field(default_factory=dict)

    def settled(self, now_ns: int) -> bool:
        """Whether an input at `now_ns` belongs to an earlier run (applied by it)."""
        return self.horizon_ns is not None and now_ns <= self.horizon_ns

    def inputs_until(self, now_ns: int) -> None:
        """Apply the automatic confirmations and dispatcher inputs due by `now_ns`, in time order."""
        while True:
            next_input = self.pending_inputs[self.input_pos] if self.input_pos < len(self.pending_inputs) else None
            next_auto = self.auto[0] if self.auto else None
            input_ns = int(times_ns([next_input.time])[0]) if next_input else None
            if next_auto is not None and next_auto[0] <= now_ns and (input_ns is None or next_auto[0] < input_ns):
                self._auto_confirm(*heapq.heappop(self.auto))
                continue
            if next_input is not None and input_ns <= now_ns:
                self.input_pos += 1
                if not self.settled(input_ns):  # else applied by the run that saw it
                    self._input_apply(next_input)
                continue
            return

    def _auto_confirm(self, due: int, zone: str, hazard: str) -> None:
        alert = self.tracker.alert_get(zone=zone, hazard=hazard)
        if alert is not None and alert.closure == "lift_proposed":
            self.tracker.closure_lift_confirm(zone=zone, hazard=hazard, actor=self.auto_actor, time=ns_datetime(due))

    def _input_apply(self, event: InputEvent) -> None:
        action = {"acknowledge": self.tracker.acknowledge, "closure_lift_confirm": self.tracker.closure_lift_confirm}
        try:
            if event.kind not in action:
                raise AlertStateError(f"unknown input event kind {event.kind!r}")
            action[event.kind](zone=event.zone, hazard=event.hazard, actor=event.actor, time=event.time)
        except AlertStateError as exc:
            self.input_errors.append(f"{event.time.isoformat()} {event.kind} by {event.actor}: {exc}")

    def silence_until(self, now_ns: int, hush: bool) -> None:
        """Mark silent every sensor whose silence deadline fell before `now_ns` (a fault unless `hush`)."""
        while self.deadlines and self.deadlines[0][0] < now_ns:
            _, sensor, index = heapq.heappop(self.deadlines)
            track = self.tracks[sensor]
            if self.track_last[sensor] != index or track.silent:
                continue  # it has reported since; that reading set a new deadline
            track.silent = True
            if hush:
                continue  # judged so by the run that saw it
            gap_h = (now_ns - track.times[index]) / (3600 * NS_PER_SECOND)
            fault = SensorFault(
                kind="silent",
                since=ns_datetime(track.times[index]),
                at=ns_datetime(now_ns),
                reason=f"no reading for {gap_h:.1f} h (judged at the latest reading time)",
            )
            self.tracker.sensor_fault(zone=track.config.zone, hazard=track.config.hazard, sensor=sensor, fault=fault)

    def stuck_at(self, track: _Track, k: int) -> SensorFault | None:
        settings = track.config.qc_settings
        start = int(track.run_starts[k])
        start_ns = int(track.times[start]) if start >= 0 else track.run_head_ns
        neighbours: list[tuple[np.ndarray, np.ndarray]] = []
        # stuck_check asks the neighbours only once the run has lasted their window, and only up to the time
        # of reading k (it cuts them there itself)
        if (
            settings.neighbour_change is not None
            and int(track.times[k]) - start_ns >= int(settings.neighbour_window.total_seconds() * 1e9)
        ):
            neighbours = [(self.tracks[n].times, self.tracks[n].values) for n in track.config.neighbours
                          if n in self.tracks]
        return stuck_check(
            times_ns_=track.times,
            values=track.values,
            end=k,
            settings=settings,
            neighbours=neighbours,
            run_start=start,
            run_start_ns=track.run_head_ns,
        )

    def carried_deadlines(self, carried: Mapping[str, _Track]) -> None:
        """Where each carried sensor stood: its last reading, and the silence deadline that reading set."""
        for sensor, track in carried.items():
            k = len(track.times) - 1
            self.track_last[sensor] = k
            interval = int(track.intervals[k])
            if interval and not track.silent:
                deadline = int(track.times[k]) + int(track.config.qc_settings.silent_factor * interval)
                heapq.heappush(self.deadlines, (deadline, sensor, k))

    def context_settle(self, start_at: Mapping[str, int], last_quiet: int) -> None:
        """Readings up to each mark were seen by an earlier run: they emit nothing and only leave each sensor
        in a state (silent, stuck, last valid value, pending silence deadline). That state depends only on
        each sensor's last readings, so it is set here directly instead of stepping through the context.
        Those runs judged silence up to `last_quiet` (any sensor's reading, or a run's end, revealed it)."""
        while (
            self.input_pos < len(self.pending_inputs)
            and int(times_ns([self.pending_inputs[self.input_pos].time])[0]) <= last_quiet
        ):
            self.input_pos += 1  # applied by the run that saw it
        for sensor, track in self.tracks.items():
            k = start_at[sensor] - 1
            if k < 0:
                continue
            self.track_last[sensor] = k
            interval = int(track.intervals[k])
            if interval:
                deadline = int(track.times[k]) + int(track.config.qc_settings.silent_factor * interval)
                if deadline < last_quiet:
                    track.silent = True  # a later reading (of any sensor) already revealed the silence
                else:
                    heapq.heappush(self.deadlines, (deadline, sensor, k))
            self._stuck_settle(track, k)

    def _stuck_settle(self, track: _Track, k: int) -> None:
        """Stuck: what the last reading QC let through up to k said; last valid value: the last one not stuck."""
        checked = False
        for j in range(k, -1, -1):
            if track.qc.flagged_as_of(j, j):
                continue
            fault = self.stuck_at(track, j)
            if not checked:
                track.stuck, checked = fault is not None, True
            if fault is None:
                track.last_valid = float(track.values[j])
                break
            if track.config.gauge is None:
                break  # the last valid value only matters for a gauge's lead time

    def step(self, now_ns: int, sensor: str, k: int, hush: bool) -> None:
        """Reading k of `sensor`: inputs and silence up to it, then its sensor's state, then the rule (only
        judged when not `hush`: context a run before this one judged)."""
        track = self.tracks[sensor]
        config = track.config
        self.inputs_until(now_ns)
        self.silence_until(now_ns, hush)
        self.track_last[sensor] = k
        if track.silent:
            track.silent = False
            if not hush:
                self.tracker.sensor_restored(zone=config.zone, hazard=config.hazard, sensor=sensor,
                                             time=ns_datetime(now_ns))
        interval = int(track.intervals[k])
        if interval:
            heapq.heappush(self.deadlines, (now_ns + int(config.qc_settings.silent_factor * interval), sensor, k))
        if track.qc.flagged_as_of(k, k):
            return  # QC keeps it from the rules; a spike never raises an alert
        fault = self.stuck_at(track, k)
        if fault is not None:
            if not track.stuck:
                track.stuck = True
                if not hush:
                    self.tracker.sensor_fault(zone=config.zone, hazard=config.hazard, sensor=sensor, fault=fault)
            return
        if track.stuck:
            track.stuck = False
            if not hush:
                self.tracker.sensor_restored(zone=config.zone, hazard=config.hazard, sensor=sensor,
                                             time=ns_datetime(now_ns))
        if hush:
            track.last_valid = float(track.values[k])
            return
        self._judge(track, k, now_ns)

    def _judge(self, track: _Track, k: int, now_ns: int) -> None:
        """The sensor's rule at reading k, and what the tracker makes of it."""
        config = track.config
        result = _evaluate(track, k)
        if result is None:
            return
        if config.valid_for is not None:
            result = dataclasses.replace(result, valid_for=config.valid_for)
        for event in self.tracker.observe(zone=config.zone, result=result):
            if event.kind == "closure_lift_proposed" and self.auto_confirm_after is not None:
                due = now_ns + int(self.auto_confirm_after.total_seconds() * NS_PER_SECOND)
                heapq.heappush(self.auto, (due, event.zone, event.hazard))
        if config.gauge is not None:
            _lead_time_note(track, k, self.tracker, self.lead_times)

    def finish(self, last_ns: int | None) -> None:
        """The inputs up to the last reading; silence judged at the latest reading time seen so far (a late
        batch's own last deadline may fall before the horizon, and the next run takes everything up to the
        horizon as judged)."""
        if last_ns is not None:
            self.inputs_until(last_ns)
        end_ns = max((t for t in (last_ns, self.horizon_ns) if t is not None), default=None)
        if end_ns is not None:
            self.silence_until(end_ns, False)


def _qc_records(
    tracks: Mapping[str, _Track], qc_start: Mapping[str, int], carried: bool
) -> tuple[list[QCRecord], dict[str, dt.datetime]]:
    """The QC flags from where each sensor's flags may have changed on, and that place's time per sensor."""
    qc_records = []
    qc_from: dict[str, dt.datetime] = {}
    for sensor, track in sorted(tracks.items()):
        first = qc_start.get(sensor, len(track.times) if carried else 0)
        if first >= len(track.times):
            continue
        qc_from[sensor] = ns_datetime(int(track.times[first]))
        for i in first + np.flatnonzero(track.qc.flagged[first:]):
            reading = track.reading(int(i))
            qc_records.append(
                QCRecord(
                    sensor=sensor,
                    parameter=reading.parameter,
                    time=reading.time,
                    value=reading.value,
                    kind=track.qc.kinds[i] or "spike",
                    reason=track.qc.reasons[i] or "",
                    key=reading.key,
                )
            )
    return qc_records, qc_from


def readings_replay(
    *,
    readings: Sequence[Reading] = (),
    sensors: Mapping[str, SensorConfig] | Sequence[SensorConfig],
    series: Sequence[SeriesReadings] = (),
    tracker: AlertTracker | None = None,
    tracker_settings: TrackerSettings | None = None,
    inputs: Sequence[InputEvent] = (),
    auto_confirm_after: dt.timedelta | None = None,
    auto_actor: str = "replay:auto-confirm",
    since: dt.datetime | None = None,
    carry: ReplayCarry | None = None,
    since_by_sensor: Mapping[str, dt.datetime] | None = None,
) -> ReplayResult:
    """Run QC, rules and the alert tracker over `readings` in reading-time order.

    `sensors` configures each sensor (readings of others are skipped and counted); `series` gives readings
    as arrays instead (per sensor; a sensor comes either as readings or as series); `inputs` are recorded
    dispatcher actions; `auto_confirm_after` confirms every proposed closure lift that long after the
    proposal (a replay stand-in for the dispatcher, within one call).

    Live use, run after run: pass the tracker resumed from the previous run's `state_dump`, readings
    from a day before the previous run's `evaluated_at` onwards, and `since=` that `evaluated_at`. Readings
    and inputs up to `since` then only give context (QC history, rule windows, sensor states) and emit
    nothing again, so the runs together emit exactly the events of one replay over all the readings.

    Readings that come late (a gauge uploading its last minutes in a batch after other sensors' newer
    readings were judged) need each sensor's own mark: `since_by_sensor` gives, per sensor, the reading time
    up to which earlier runs judged it (`since` for a sensor not in it). A reading is context iff its time is
    at or before its own sensor's mark, so every reading is judged exactly once. Silence and inputs up to the
    horizon (the latest of the marks and `since`: the latest reading time earlier runs judged) are settled:
    the context first leaves every sensor as those runs left it (silent when its last reading's silence
    deadline fell before the horizon), then the new readings are judged in time order, late ones included,
    and the run ends judging silence at the horizon or its last reading, whichever is later. With marks
    equal to `since` this is the run above; runs fed late readings differ from one replay only where the
    readings' arrival did (the tracker's late results: see `AlertTracker.observe`).

    Cheaper, when the previous run's result is at hand: pass its `carry` and only the readings after each
    sensor's last one (`carry.last_times()`; a sensor must come the same way, readings or series, each
    time). Nothing is judged again: new readings up to `since` are stepped through as context, the later
    ones evaluated, and `qc` lists the flags from `qc_from` on (the new readings and the departures that
    were still open). The carry given is left as it was."""
    configs = dict(sensors) if isinstance(sensors, Mapping) else {c.sensor: c for c in sensors}
    if carry is not None and carry.configs != configs:
        raise ValueError("the carry was made for other sensor configurations")
    tracker = tracker or AlertTracker(settings=tracker_settings)
    skipped: dict[str, int] = {}
    by_sensor = _readings_by_sensor(readings, configs, skipped)
    arrays = _series_by_sensor(series, configs, by_sensor, skipped)
    carried = carry.tracks if carry is not None else {}
    tracks, start_at, qc_start = _tracks_built(
        by_sensor=by_sensor, arrays=arrays, configs=configs, carried=carried, skipped=skipped
    )
    horizon_ns, new_at = _marks(tracks, start_at, since, since_by_sensor)
    if carry is None:
        # without a carry, the readings up to each mark are context: settled in bulk below, not stepped through
        start_at = new_at
    # with a carry, the new readings up to their marks (judged by another worker's runs) are stepped
    # through first, as context, then the rest are judged in time order
    stepped = [] if carry is None else _timeline(tracks, {s: range(start_at[s], new_at[s]) for s in tracks})
    order = _timeline(tracks, {s: range(new_at[s], len(t.times)) for s, t in tracks.items()})
    run = _Run(
        tracker=tracker,
        tracks=tracks,
        horizon_ns=horizon_ns,
        pending_inputs=sorted(inputs, key=lambda e: (utc(e.time), e.kind, e.zone, e.hazard, e.actor)),
        auto=list(carry.auto) if carry is not None else [],  # a carry brings the ones due after its run
        auto_confirm_after=auto_confirm_after,
        auto_actor=auto_actor,
    )
    first_event = len(tracker.events)
    run.carried_deadlines(carried)
    quiet_ends = [] if carry is not None else [
        int(track.times[start_at[s_] - 1]) for s_, track in tracks.items() if start_at[s_] > 0
    ]
    if quiet_ends:
        run.context_settle(start_at, max(*quiet_ends, horizon_ns))
    for hush, part in ((True, stepped), (False, order)):
        for now_ns, sensor, k in part:
            run.step(now_ns, sensor, k, hush)
        if hush and horizon_ns is not None:
            # what the earlier runs judged silent by the horizon, before any new (possibly late) reading
            run.silence_until(horizon_ns, True)
    run.finish(max((part[-1][0] for part in (stepped, order) if part), default=None))
    return _result(run, tracks, configs, first_event=first_event, qc_start=qc_start, carried=carry is not None,
                   skipped=skipped)


def _marks(tracks: dict[str, _Track], start_at: dict[str, int], since: dt.datetime | None,
           since_by_sensor: Mapping[str, dt.datetime] | None) -> tuple[int | None, dict[str, int]]:
    """The horizon (the latest reading time earlier runs judged: inputs and silence up to it are settled,
    in ns) and, per sensor, the index of its first reading to judge (after its own mark)."""
    since_ns = int(times_ns([since])[0]) if since is not None else None
    given = dict(zip(since_by_sensor, times_ns(list(since_by_sensor.values())).tolist(), strict=True)) \
        if since_by_sensor else {}
    horizon_ns = max((m for m in (since_ns, *given.values()) if m is not None), default=None)
    return horizon_ns, _first_new(tracks, start_at, since_ns, given)


def _result(run: _Run, tracks: dict[str, _Track], configs: dict[str, SensorConfig], *, first_event: int,
            qc_start: dict[str, int], carried: bool, skipped: dict[str, int]) -> ReplayResult:
    """What the replay emitted from `first_event` on, the QC flags, and the carry for the next run."""
    latest = max((int(track.times[-1]) for track in tracks.values()), default=None)
    qc_records, qc_from = _qc_records(tracks, qc_start, carried=carried)
    return ReplayResult(
        events=list(run.tracker.events[first_event:]),
        qc=qc_records,
        lead_times=run.lead_times,
        tracker=run.tracker,
        evaluated_at=ns_datetime(latest) if latest is not None else None,
        skipped=skipped,
        input_errors=run.input_errors,
        carry=ReplayCarry(tracks={sensor: track.trimmed() for sensor, track in tracks.items()}, configs=configs,
                          auto=list(run.auto)),
        qc_from=qc_from,
    )


def _lead_time_note(track: _Track, k: int, tracker: AlertTracker, lead_times: list[LeadTime]) -> None:
    """Record, once per alert, how long before the first observed warning-level crossing it was raised."""
    gauge = track.config.gauge
    assert gauge is not None
    value = float(track.values[k])
    previous, track.last_valid = track.last_valid, value
    if previous is None or not (previous < gauge.warning <= value):
        return
    alert = tracker.alert_get(zone=track.config.zone, hazard=track.config.hazard)
    if alert is None or alert.first_crossing_at is not None:
        return
    crossed = track.reading(k).time
    alert.first_crossing_at = crossed
    lead_times.append(
        LeadTime(
            zone=track.config.zone,
            sensor=track.config.sensor,
            alert_id=alert.alert_id,
            raised_at=alert.raised_at,
            crossed_at=crossed,
            minutes=round((crossed - alert.raised_at).total_seconds() / 60, 1),
            by_forecast=alert.raised_by_forecast,
        )
    )
