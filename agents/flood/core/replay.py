"""Readings in, alert events out: quality control, rules and the alert tracker run in reading-time order.

This is the one loop both the live agent and a replay use. Each reading is judged only on what had
arrived by its time (QC flags as known then, rule windows ending at it), sensor silence is judged at the
latest reading time seen so far, and dispatcher inputs (acknowledgements, closure-lift confirmations) are
applied at their own times. Readings are put in a canonical order first, so the same readings in any order
give the same event log."""
from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .alerts import AlertEvent, AlertTracker, TrackerSettings
from .domain import HAZARD_FOR_PARAMETER, Reading, utc
from .qc import QCSettings, SensorFault, SeriesQC, ns_datetime, qc_settings_default, series_qc_run, stuck_check, times_ns
from .rules import (DepthSettings, GaugeSettings, RainfallSettings, RuleResult, SeriesView, depth_rule, level_rule,
                    rainfall_rule)

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

    @property
    def hazard(self) -> str:
        """The hazard (alert key part) this sensor's rule feeds."""
        return HAZARD_FOR_PARAMETER[self.parameter]

    @property
    def qc_settings(self) -> QCSettings:
        """The QC settings in force (the parameter's defaults unless given)."""
        return self.qc or qc_settings_default(parameter=self.parameter)


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

    def event_log(self) -> list[dict[str, object]]:
        """The events as JSON-friendly dicts (what determinism is checked on)."""
        return [event.as_dict() for event in self.events]


@dataclass
class _Track:
    config: SensorConfig
    readings: list[Reading]
    times: np.ndarray
    values: np.ndarray
    qc: SeriesQC
    stuck: bool = False
    silent: bool = False
    last_valid: float | None = None
    crossed_alert: str | None = None


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
    lo = int(np.searchsorted(track.times, track.times[k] - _window(config), side="right"))
    keep = [i for i in range(lo, k + 1) if not track.qc.flagged_as_of(i, k)]
    view = SeriesView(sensor=config.sensor, times=track.times[keep], values=track.values[keep],
                      keys=[track.readings[i].key for i in keep])
    if config.parameter == "rainfall":
        return rainfall_rule(series=view, settings=config.rain or RainfallSettings())
    if config.parameter == "depth":
        return depth_rule(series=view, settings=config.depth or DepthSettings())
    if config.parameter == "level" and config.gauge is not None:
        return level_rule(series=view, gauge=config.gauge)
    return None


def _expected_interval(track: _Track, k: int) -> int | None:
    settings = track.config.qc_settings
    if settings.expected_interval is not None:
        return int(settings.expected_interval.total_seconds() * NS_PER_SECOND)
    steps = np.diff(track.times[max(0, k - 20):k + 1])
    steps = steps[steps > 0]
    return int(np.median(steps)) if len(steps) else None


def readings_replay(
    *,
    readings: Sequence[Reading],
    sensors: Mapping[str, SensorConfig] | Sequence[SensorConfig],
    tracker: AlertTracker | None = None,
    tracker_settings: TrackerSettings | None = None,
    inputs: Sequence[InputEvent] = (),
    auto_confirm_after: dt.timedelta | None = None,
    auto_actor: str = "replay:auto-confirm",
) -> ReplayResult:
    """Run QC, rules and the alert tracker over `readings` in reading-time order.

    `sensors` configures each sensor (readings of others are skipped and counted); `inputs` are recorded
    dispatcher actions; `auto_confirm_after` confirms every proposed closure lift that long after the
    proposal (a replay stand-in for the dispatcher). Pass a resumed `tracker` to continue a live state."""
    configs = dict(sensors) if isinstance(sensors, Mapping) else {c.sensor: c for c in sensors}
    tracker = tracker or AlertTracker(settings=tracker_settings)
    skipped: dict[str, int] = {}
    grouped: dict[str, dict[dt.datetime, Reading]] = {}
    for reading in sorted(readings, key=lambda r: (r.sensor, r.time, r.row, r.value)):
        config = configs.get(reading.sensor)
        if config is None or config.parameter != reading.parameter:
            skipped["unconfigured sensor"] = skipped.get("unconfigured sensor", 0) + 1
            continue
        series = grouped.setdefault(reading.sensor, {})
        if reading.time in series:
            skipped["duplicate time"] = skipped.get("duplicate time", 0) + 1
            continue
        series[reading.time] = reading

    tracks: dict[str, _Track] = {}
    for sensor, series in grouped.items():
        ordered = list(series.values())
        times = times_ns([r.time for r in ordered])
        values = np.array([r.value for r in ordered], dtype=float)
        tracks[sensor] = _Track(config=configs[sensor], readings=ordered, times=times, values=values,
                                qc=series_qc_run(times=times, values=values, settings=configs[sensor].qc_settings))

    order = sorted(((int(t), sensor, k) for sensor, track in tracks.items() for k, t in enumerate(track.times)))
    pending_inputs = sorted(inputs, key=lambda e: (utc(e.time), e.kind, e.zone, e.hazard, e.actor))
    auto: list[tuple[int, str, str]] = []  # (due ns, zone, hazard) heap of automatic confirmations
    deadlines: list[tuple[int, str, int]] = []  # (deadline ns, sensor, reading index) heap for silence
    lead_times: list[LeadTime] = []
    input_pos = 0

    def inputs_until(now_ns: int) -> None:
        nonlocal input_pos
        while True:
            next_input = pending_inputs[input_pos] if input_pos < len(pending_inputs) else None
            next_auto = auto[0] if auto else None
            input_ns = int(times_ns([next_input.time])[0]) if next_input else None
            if next_auto is not None and next_auto[0] <= now_ns and (input_ns is None or next_auto[0] < input_ns):
                due, zone, hazard = heapq.heappop(auto)
                alert = tracker.alert_get(zone=zone, hazard=hazard)
                if alert is not None and alert.closure == "lift_proposed":
                    tracker.closure_lift_confirm(zone=zone, hazard=hazard, actor=auto_actor, time=ns_datetime(due))
                continue
            if next_input is not None and input_ns <= now_ns:
                input_pos += 1
                if next_input.kind == "acknowledge":
                    tracker.acknowledge(zone=next_input.zone, hazard=next_input.hazard, actor=next_input.actor,
                                        time=next_input.time)
                elif next_input.kind == "closure_lift_confirm":
                    tracker.closure_lift_confirm(zone=next_input.zone, hazard=next_input.hazard,
                                                 actor=next_input.actor, time=next_input.time)
                else:
                    raise ValueError(f"unknown input event kind {next_input.kind!r}")
                continue
            return

    def silence_until(now_ns: int) -> None:
        while deadlines and deadlines[0][0] < now_ns:
            _, sensor, index = heapq.heappop(deadlines)
            track = tracks[sensor]
            last_index = track_last[sensor]
            if last_index != index or track.silent:
                continue  # it has reported since; that reading set a new deadline
            track.silent = True
            gap_h = (now_ns - track.times[index]) / (3600 * NS_PER_SECOND)
            fault = SensorFault(kind="silent", since=ns_datetime(track.times[index]), at=ns_datetime(now_ns),
                                reason=f"no reading for {gap_h:.1f} h (judged at the latest reading time)")
            tracker.sensor_fault(zone=track.config.zone, hazard=track.config.hazard, sensor=sensor, fault=fault)

    track_last: dict[str, int] = {}
    for now_ns, sensor, k in order:
        track = tracks[sensor]
        config = track.config
        inputs_until(now_ns)
        silence_until(now_ns)
        track_last[sensor] = k
        if track.silent:
            track.silent = False
            tracker.sensor_restored(zone=config.zone, hazard=config.hazard, sensor=sensor, time=ns_datetime(now_ns))
        interval = _expected_interval(track, k)
        if interval:
            heapq.heappush(deadlines, (now_ns + int(config.qc_settings.silent_factor * interval), sensor, k))
        if track.qc.flagged_as_of(k, k):
            continue  # QC keeps it from the rules; a spike never raises an alert
        neighbours = [(tracks[n].times[:int(np.searchsorted(tracks[n].times, now_ns, side="right"))],
                       tracks[n].values[:int(np.searchsorted(tracks[n].times, now_ns, side="right"))])
                      for n in config.neighbours if n in tracks]
        fault = stuck_check(times_ns_=track.times, values=track.values, end=k, settings=config.qc_settings,
                            neighbours=neighbours)
        if fault is not None:
            if not track.stuck:
                track.stuck = True
                tracker.sensor_fault(zone=config.zone, hazard=config.hazard, sensor=sensor, fault=fault)
            continue
        if track.stuck:
            track.stuck = False
            tracker.sensor_restored(zone=config.zone, hazard=config.hazard, sensor=sensor, time=ns_datetime(now_ns))
        result = _evaluate(track, k)
        if result is None:
            continue
        events = tracker.observe(zone=config.zone, result=result)
        for event in events:
            if event.kind == "closure_lift_proposed" and auto_confirm_after is not None:
                due = now_ns + int(auto_confirm_after.total_seconds() * NS_PER_SECOND)
                heapq.heappush(auto, (due, event.zone, event.hazard))
        if config.gauge is not None:
            _lead_time_note(track, k, tracker, lead_times)

    evaluated_at = ns_datetime(order[-1][0]) if order else None
    if order:
        inputs_until(order[-1][0])
        silence_until(order[-1][0])

    qc_records = []
    for sensor, track in sorted(tracks.items()):
        for i in np.flatnonzero(track.qc.flagged):
            reading = track.readings[i]
            qc_records.append(QCRecord(sensor=sensor, parameter=reading.parameter, time=reading.time,
                                       value=reading.value, kind=track.qc.kinds[i] or "spike",
                                       reason=track.qc.reasons[i] or "", key=reading.key))
    return ReplayResult(events=list(tracker.events), qc=qc_records, lead_times=lead_times, tracker=tracker,
                        evaluated_at=evaluated_at, skipped=skipped)


def _lead_time_note(track: _Track, k: int, tracker: AlertTracker, lead_times: list[LeadTime]) -> None:
    """Record, once per alert, how long before the first observed warning-level crossing it was raised."""
    gauge = track.config.gauge
    assert gauge is not None
    value = float(track.values[k])
    previous, track.last_valid = track.last_valid, value
    if previous is None or not (previous < gauge.warning <= value):
        return
    alert = tracker.alert_get(zone=track.config.zone, hazard=track.config.hazard)
    if alert is None or alert.alert_id == track.crossed_alert:
        return
    track.crossed_alert = alert.alert_id
    crossed = track.readings[k].time
    lead_times.append(LeadTime(zone=track.config.zone, sensor=track.config.sensor, alert_id=alert.alert_id,
                               raised_at=alert.raised_at, crossed_at=crossed,
                               minutes=round((crossed - alert.raised_at).total_seconds() / 60, 1),
                               by_forecast=alert.raised_by_forecast))
