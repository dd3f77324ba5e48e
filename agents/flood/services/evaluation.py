"""The live evaluation and drills: the core's one loop (`readings_replay`) over the readings since the last
evaluation, with the tracker resumed from its saved state.

A live run reads back `context_window()` before the previous evaluation time for context (QC history, rule
windows, sensor states) and passes `since=` that time, so the runs together emit exactly the events one
replay over all the readings would: rules run on reading times, never the wall clock. A drill runs a file
through the same loop in memory, tick by tick, with automatic closure-lift confirmations; it never touches
the live alerts."""
from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction

from ..core import AlertTracker, InputEvent, Reading, readings_parse, readings_replay
from ..core.domain import RowError
from ..core.qc import times_ns
from ..core.replay import QCRecord
from ..models import FloodZone, Sensor
from ..models import Reading as ReadingRow
from ..selectors import (
    EvaluationSetup,
    config_sensor_code,
    context_window,
    evaluation_setup,
    latest_reading_time,
    series_window,
    tracker_settings,
)
from .alerts import events_apply, lead_times_store, tracker_load, tracker_state_lock

log = logging.getLogger(__name__)

QC_CODES = {"spike": ReadingRow.QC.SPIKE, "out_of_range": ReadingRow.QC.OUT_OF_RANGE}


@dataclass
class EvaluationOutcome:
    """What one live evaluation did (the run's KPIs come from here)."""

    evaluated_at: dt.datetime | None = None
    since: dt.datetime | None = None
    readings_loaded: int = 0
    readings_new: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    lead_times_min: list[float] = field(default_factory=list)
    qc_flagged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    sensors: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    nothing_new: bool = False


def _qc_store(*, records: Sequence[QCRecord], setup: EvaluationSetup, start: dt.datetime | None) -> int:
    """Write the QC flags of the evaluated window onto the readings (a provisional spike that turned out
    to be a level shift is cleared again). Returns how many readings are flagged in the window."""
    flags: dict[tuple[int, dt.datetime], int] = {}
    for record in records:
        series_id = setup.series_of_config.get(record.sensor)
        if series_id is not None:
            flags[(series_id, record.time)] = int(QC_CODES.get(record.kind, ReadingRow.QC.SPIKE))
    ids = list(setup.configs_of_series)
    keys = list(flags)
    import psycopg

    connection.ensure_connection()
    # server-side binding: the id and time arrays travel as binary parameters, not as SQL text
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(
            """
            UPDATE agent_flood_reading r SET qc = f.qc
              FROM unnest(%s::bigint[], %s::timestamptz[], %s::smallint[]) AS f(series_id, time, qc)
             WHERE r.series_id = f.series_id AND r.time = f.time AND r.qc <> f.qc
            """,
            [[k[0] for k in keys], [k[1] for k in keys], list(flags.values())],
        )
        where_start = " AND time > %s" if start is not None else ""
        cur.execute(
            f"""
            UPDATE agent_flood_reading SET qc = 0
             WHERE series_id = ANY(%s){where_start} AND qc <> 0
               AND (series_id, time) NOT IN (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]))
            """,
            [ids, *([start] if start is not None else []), [k[0] for k in keys], [k[1] for k in keys]],
        )
    return len(flags)


def evaluation_run(*, run=None) -> EvaluationOutcome:
    """Evaluate the readings that arrived since the last evaluation (one transaction; the tracker row is
    locked so runs and dispatcher actions never interleave)."""
    out = EvaluationOutcome()
    clock = time.perf_counter()
    with transaction.atomic():
        state = tracker_state_lock()
        since = out.since = state.evaluated_at
        latest = latest_reading_time()
        if latest is None or (since is not None and latest <= since):
            out.nothing_new, out.evaluated_at = True, since
            out.seconds["total"] = time.perf_counter() - clock
            return out
        t = time.perf_counter()
        setup = evaluation_setup()
        out.seconds["setup"] = time.perf_counter() - t
        out.sensors = len(setup.configs)
        start = (since or latest) - context_window()
        t = time.perf_counter()
        series = series_window(setup=setup, start=start)
        out.seconds["load"] = time.perf_counter() - t
        out.readings_loaded = sum(len(s.times_ns) for s in series)
        since_ns = int(times_ns([since])[0]) if since is not None else None
        out.readings_new = sum(int((s.times_ns > since_ns).sum()) if since_ns is not None else len(s.times_ns)
                               for s in series if s.key_sensor is None)
        t = time.perf_counter()
        tracker = tracker_load(state)
        out.seconds["tracker_load"] = time.perf_counter() - t
        t = time.perf_counter()
        # The replay makes many short-lived objects next to large arrays; collector passes over them cost
        # more than the replay itself at a thousand sensors, and it creates no reference cycles.
        collecting = gc.isenabled()
        gc.disable()
        try:
            result = readings_replay(series=series, sensors=setup.configs, tracker=tracker, since=since)
        finally:
            if collecting:
                gc.enable()
        out.seconds["replay"] = time.perf_counter() - t
        t = time.perf_counter()
        # rows fresh from this transaction (the setup is cached between runs, rows change)
        zones = FloodZone.objects.in_bulk({e.zone for e in result.events}, field_name="code")
        sensors = Sensor.objects.in_bulk({config_sensor_code(e.sensor) for e in result.events if e.sensor},
                                         field_name="code")
        out.counts = events_apply(events=result.events, zones=zones, sensors=sensors, run=run)
        out.lead_times_min = lead_times_store(lead_times=result.lead_times)
        out.qc_flagged = _qc_store(records=result.qc, setup=setup, start=start)
        out.skipped = dict(result.skipped)
        out.evaluated_at = result.evaluated_at or since
        if since is not None and out.evaluated_at is not None and out.evaluated_at < since:
            out.evaluated_at = since  # readings of unconfigured sensors only: nothing moved
        state.state = result.tracker.state_dump()
        state.evaluated_at = out.evaluated_at
        state.save()
        out.seconds["store"] = time.perf_counter() - t
    out.seconds["total"] = time.perf_counter() - clock
    return out


# --------------------------------------------------------------------------------------------- drills


@dataclass
class DrillResult:
    """A drill's deterministic alert log and what went into it."""

    events: list[dict]
    readings: int
    rejected: list[RowError]
    ticks: int
    skipped: dict[str, int]
    input_errors: list[str]
    start: dt.datetime | None
    end: dt.datetime | None

    def as_dict(self) -> dict:
        """JSON for `replay_readings --json`."""
        return {"readings": self.readings, "ticks": self.ticks,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "rejected": [{"row": e.row, "reason": e.reason} for e in self.rejected],
                "skipped": self.skipped, "input_errors": self.input_errors, "events": self.events}


def drill_replay(
    *, data: bytes, fmt: str | None = None, tz: str | None = None, sensor: str | None = None,
    speed: float = 0.0, step: dt.timedelta = dt.timedelta(minutes=15),
    auto_confirm_after: dt.timedelta | None = dt.timedelta(minutes=10), inputs: Sequence[InputEvent] = (),
    on_events: Callable[[list[dict]], None] | None = None, sleep: Callable[[float], None] = time.sleep,
) -> DrillResult:
    """Replay a readings file through the live loop for a drill: ticks of `step` reading time, each a
    `readings_replay` resumed from the previous tick's saved tracker (as the live runs do), paced at
    `speed` x real time (0: as fast as possible). Proposed closure lifts are confirmed `auto_confirm_after`
    later (a stand-in dispatcher) unless `inputs` records the real confirmations. The sensors and zones
    are the city's; nothing is written to the database."""
    from .ingest import series_index

    _, default_parameter = series_index()
    parsed = readings_parse(data=data, fmt=fmt, tz=tz, default_parameter_for=default_parameter.get, sensor=sensor)
    setup = evaluation_setup()
    readings, unknown = _drill_readings(parsed.readings, setup)
    result = DrillResult(events=[], readings=len(parsed.readings), rejected=list(parsed.rejected), ticks=0,
                         skipped={"not a sensor of this city (or in no zone)": unknown} if unknown else {},
                         input_errors=[], start=None, end=None)
    if not readings:
        return result
    times = sorted(r.time for r in readings)
    result.start, result.end = times[0], times[-1]
    recorded = list(inputs)
    state: dict | None = None
    since: dt.datetime | None = None
    tick_end = times[0] + step
    window = context_window()
    while True:
        chunk = [r for r in readings if r.time <= tick_end and (since is None or r.time > since - window)]
        tracker = AlertTracker.state_load(json.loads(json.dumps(state)), settings=tracker_settings()) if state \
            else AlertTracker(settings=tracker_settings())
        out = readings_replay(readings=chunk, sensors=setup.configs, tracker=tracker, inputs=recorded, since=since,
                              auto_confirm_after=auto_confirm_after, auto_actor="drill:auto-confirm")
        result.ticks += 1
        logged = out.event_log()
        result.events.extend(logged)
        result.input_errors.extend(out.input_errors)
        for key, n in out.skipped.items():
            result.skipped[key] = max(result.skipped.get(key, 0), n)
        if auto_confirm_after is not None and out.evaluated_at is not None:
            # A confirmation the stand-in dispatcher owes after this tick's last reading becomes a recorded
            # input of the following ticks (the core confirms the ones due within a tick itself).
            recorded.extend(InputEvent(time=e.time + auto_confirm_after, kind="closure_lift_confirm", zone=e.zone,
                                       hazard=e.hazard, actor="drill:auto-confirm")
                            for e in out.events
                            if e.kind == "closure_lift_proposed" and e.time + auto_confirm_after > out.evaluated_at)
        if logged and on_events:
            on_events(logged)
        state, since = out.tracker.state_dump(), out.evaluated_at or since
        if tick_end >= times[-1]:
            break
        if speed > 0:
            sleep(step.total_seconds() / speed)
        tick_end += step
    return result


def _drill_readings(readings: Sequence[Reading], setup: EvaluationSetup) -> tuple[list[Reading], int]:
    """A file's readings under the config names of the city's sensors (a sensor in two zones twice), and
    how many name no evaluated sensor of the city."""
    names: dict[tuple[str, str], list[str]] = {}
    for name, series_id in setup.series_of_config.items():
        names.setdefault((name.split("@", 1)[0], setup.parameter_of_series[series_id]), []).append(name)
    out, unknown = [], 0
    for reading in readings:
        unknown += (reading.sensor, reading.parameter) not in names
        for i, name in enumerate(names.get((reading.sensor, reading.parameter), ())):
            out.append(Reading(sensor=name, parameter=reading.parameter, time=reading.time, value=reading.value,
                               unit=reading.unit, row=reading.row, id=reading.key if i else None))
    return out, unknown
