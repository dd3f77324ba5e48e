"""The live evaluation: the core's one loop (`readings_replay`) over the readings no run has judged yet,
with the tracker resumed from its saved state.

Each series remembers up to which of its own reading times the evaluation judged it (`Series.evaluated_until`,
written by the run that judged it). A live run passes those marks (`since_by_sensor=`) and the previous
evaluation time (`since=`, the newest reading judged so far): a reading is context iff its time is at or
before its own series' mark, so every reading is judged once, also one that arrives late (a gauge on a
slow link uploading its last minutes after other sensors' newer readings were judged). Readings that come
in time order make the runs together emit exactly the events one replay over all the readings would: rules
run on reading times, never the wall clock. A worker keeps the core's carry of its last
run (each sensor's recent readings and QC state) and the next run on it reads only the readings after
each series' last kept one; without a usable carry (a fresh worker, another configuration, a reset
tracker, readings backfilled among the kept ones) the run reads `context_window()` back instead. Both
ways give the same events. Drills (a file through the same loop in memory) are in services/drills.py."""
# The marks live on the series rows, which the ingest updates too: both take one advisory lock before they
# write them, so an evaluation and an ingest never deadlock.
from __future__ import annotations

import datetime as dt
import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction

from ..domain import AlertTracker, readings_replay
from ..domain.replay import QCRecord, ReplayCarry, ReplayResult
from ..models import FloodZone, Sensor, TrackerState
from ..models import Reading as ReadingRow
from ..selectors import (
    EvaluationSetup,
    config_sensor_code,
    context_window,
    evaluation_setup,
    readings_counted,
    series_after,
    series_marks,
    series_window,
    us_datetime,
)
from .alerts import events_apply, lead_times_store, tracker_load, tracker_state_lock
from .ingest import SERIES_WRITE_LOCK

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
    carried: bool = False  # went on from this worker's previous run instead of reading the context back


def _qc_store(*, records: Sequence[QCRecord], qc_from: dict[str, dt.datetime], setup: EvaluationSetup,
              judged_us: dict[int, int] | None) -> int:
    """Write the run's QC flags onto the readings: from each series' `qc_from` on, the flagged ones get
    their flag and the others none (a provisional spike that turned out to be a level shift is cleared
    again; the ingest's `impossible` flag stays); rows already so are not written. Readings after their series' mark in `judged_us` (None: no
    run's marks count) were judged by no run before and are stored unflagged, so a series whose part
    starts there needs no clearing. Returns how many readings are flagged there."""
    flags: dict[tuple[int, dt.datetime], int] = {}
    for record in records:
        series_id = setup.series_of_config.get(record.sensor)
        if series_id is not None:
            flags[(series_id, record.time)] = int(QC_CODES.get(record.kind, ReadingRow.QC.SPIKE))
    scope: dict[int, dt.datetime] = {}
    for name, start in qc_from.items():
        series_id = setup.series_of_config.get(name)
        if series_id is not None and (judged_us is None or (series_id in judged_us
                                                              and start <= us_datetime(judged_us[series_id]))):
            scope[series_id] = min(scope.get(series_id, start), start)
    keys = list(flags)
    import psycopg

    connection.ensure_connection()
    # server-side binding: the id and time arrays travel as binary parameters, not as SQL text
    with psycopg.Cursor(connection.connection) as cur:
        if keys:
            cur.execute(
                """
                UPDATE agent_flood_reading r SET qc = f.qc
                  FROM unnest(%s::bigint[], %s::timestamptz[], %s::smallint[]) AS f(series_id, time, qc)
                 WHERE r.series_id = f.series_id AND r.time = f.time AND r.qc <> f.qc
                """,
                [[k[0] for k in keys], [k[1] for k in keys], list(flags.values())],
            )
        if scope:
            cur.execute(
                """
                UPDATE agent_flood_reading r SET qc = 0
                  FROM unnest(%s::bigint[], %s::timestamptz[]) AS w(series_id, start)
                 WHERE r.series_id = w.series_id AND r.time >= w.start AND r.qc IN (%s, %s)
                   AND (r.series_id, r.time) NOT IN (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]))
                """,
                [list(scope), list(scope.values()), int(ReadingRow.QC.SPIKE), int(ReadingRow.QC.OUT_OF_RANGE),
                 [k[0] for k in keys], [k[1] for k in keys]],
            )
    return len(flags)


@dataclass
class _Kept:
    """What a worker keeps from its last live run: the core's carry and the tracker, and what they are valid
    for (the tracker row's generation, evaluation time and last write, the configuration, each series'
    backfill count and evaluation mark)."""

    carry: ReplayCarry
    tracker: AlertTracker
    generation: object
    fingerprint: str
    evaluated_at: dt.datetime | None
    updated_at: dt.datetime | None
    backfills: dict[int, int]
    marks_us: dict[int, int]


# Per worker process (tracker row name -> what its last run left). A run takes it out first, so a run that
# fails leaves nothing behind; a run on another worker moves the row on, and this one catches up.
_kept: dict[str, _Kept] = {}


def _carry_take(*, state: TrackerState, setup: EvaluationSetup, backfills: dict[int, int],
                marks_us: dict[int, int]) -> _Kept | None:
    """What this worker kept from its last run, if the next run may go on from it: same tracker row
    (generation), not ahead of the row or of any series' mark (a rolled-back run; a run of late readings
    only moves marks), same configuration, and no reading stored among the kept ones since (checked by
    count for the series that counted a backfill)."""
    kept = _kept.pop(state.name, None)
    if (kept is None or kept.generation != state.generation or kept.fingerprint != setup.fingerprint
            or state.evaluated_at is None or kept.evaluated_at is None or state.evaluated_at < kept.evaluated_at):
        return None
    if any(marks_us.get(series_id, -1) < mark for series_id, mark in kept.marks_us.items()):
        return None
    moved = [series_id for series_id, count in backfills.items() if count != kept.backfills.get(series_id, 0)]
    held = kept.carry.held() if moved else {}
    spans, counts = {}, {}
    for series_id in moved:
        names = setup.configs_of_series.get(series_id)
        if not names or names[0] not in held:
            continue  # nothing kept of it: its readings are read after the context's start anyway
        first, last, n = held[names[0]]
        spans[series_id], counts[series_id] = (first, last), n
    if spans and readings_counted(spans=spans) != counts:
        log.info("flood: readings were backfilled among the kept ones; reading the context again")
        return None
    return kept


def _marks_store(*, marks_us: dict[int, int], read_us: dict[int, int]) -> None:
    """Write the series' evaluation marks (epoch microseconds), taking turns with the ingests that update
    the same rows (`SERIES_WRITE_LOCK`, held to the commit), so the two never wait on each other in a cycle.
    A mark is written only where it is still the one the run read (`read_us`; absent: none): an ingest that
    revised a judged reading meanwhile moved it back, and the next run must judge from there."""
    import psycopg

    ids = list(marks_us)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [SERIES_WRITE_LOCK])
        cur.execute(
            """
            UPDATE agent_flood_series s SET evaluated_until = timestamptz 'epoch' + m.us * interval '1 microsecond'
              FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS m(id, us, was)
             WHERE s.id = m.id
               AND s.evaluated_until IS NOT DISTINCT FROM timestamptz 'epoch' + m.was * interval '1 microsecond'
            """,
            [ids, [marks_us[i] for i in ids], [read_us.get(i) for i in ids]],
        )


def _context_start(*, since: dt.datetime | None, latest: dt.datetime, judged: dict[int, int],
                   pending: Sequence[int]) -> dt.datetime:
    """How far back the run reads its readings: the context of the earliest new reading."""
    window = context_window()
    if since is None:
        return latest - window
    # the context of the earliest new reading (a late one may be older than `since`), at most one
    # window further back than usual (a series' mark is old when it had been silent for long)
    first = min((judged[i] for i in pending if i in judged), default=None)
    return max(min(since, us_datetime(first)) if first is not None else since, since - window) - window


def _series_read(*, setup: EvaluationSetup, carry: ReplayCarry | None, start: dt.datetime) -> list:
    """The readings the replay needs: only those after each series' last kept one when going on from a
    carry, else the whole context from `start`."""
    if carry is None:
        return series_window(setup=setup, start=start)
    after_us: dict[int, int] = {}
    for name, last_ns in carry.last_times().items():
        series_id = setup.series_of_config[name]
        after_us[series_id] = min(after_us.get(series_id, last_ns // 1000), last_ns // 1000)
    return series_after(setup=setup, after_us=after_us, start=start)


def _sensor_marks(*, setup: EvaluationSetup, judged: dict[int, int], since: dt.datetime | None,
                  start: dt.datetime) -> dict[str, dt.datetime]:
    """Each series' own mark, where it is not `since` (a series no run judged: everything read is new).
    Marks travel only for the configs that differ: in the steady state most series end at `since`."""
    if since is None:
        return {}
    since_us = (since - us_datetime(0)) // dt.timedelta(microseconds=1)
    since_by_sensor: dict[str, dt.datetime] = {}
    for series_id, names in setup.configs_of_series.items():
        mark = judged.get(series_id)
        if mark != since_us:
            since_by_sensor.update(dict.fromkeys(names, start if mark is None else us_datetime(mark)))
    return since_by_sensor


def _marks_after(*, setup: EvaluationSetup, marks, judged: dict[int, int], pending: Sequence[int], series: list,
                 out: EvaluationOutcome) -> dict[int, int]:
    """What this run will have judged (the marks it writes); counts the new readings in `out`."""
    marks_after = dict(judged)
    for series_id in pending:
        marks_after[series_id] = max(judged.get(series_id, -1), marks.last_us[series_id])
    for s in series:
        if s.key_sensor is not None:
            continue
        series_id = setup.series_of_config[s.sensor]
        mark = judged.get(series_id)
        out.readings_new += len(s.times_ns) - (
            int(np.searchsorted(s.times_ns, mark * 1000, side="right")) if mark is not None else 0)
        last_us = int(s.times_ns[-1]) // 1000
        if last_us > marks_after.get(series_id, -1):
            marks_after[series_id] = last_us  # stored after the marks were read, judged all the same
    return marks_after


def _replay_uncollected(**kwargs) -> ReplayResult:
    """`readings_replay` with the garbage collector off: the replay makes many short-lived objects next to
    large arrays; collector passes over them cost more than the replay itself at a thousand sensors, and it
    creates no reference cycles."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return readings_replay(**kwargs)
    finally:
        if collecting:
            gc.enable()


def _result_store(*, result: ReplayResult, setup: EvaluationSetup, state: TrackerState, marks,
                  judged: dict[int, int], marks_after: dict[int, int], since: dt.datetime | None, run,
                  out: EvaluationOutcome) -> None:
    """The run's events, lead times, QC flags, series marks and tracker state, stored."""
    # rows fresh from this transaction (the setup is cached between runs, rows change)
    zones = FloodZone.objects.in_bulk({e.zone for e in result.events}, field_name="code")
    sensors = Sensor.objects.in_bulk({config_sensor_code(e.sensor) for e in result.events if e.sensor},
                                     field_name="code")
    out.counts = events_apply(events=result.events, zones=zones, sensors=sensors, run=run)
    out.lead_times_min = lead_times_store(lead_times=result.lead_times)
    out.qc_flagged = _qc_store(records=result.qc, qc_from=result.qc_from, setup=setup,
                               judged_us=judged if since is not None else None)
    out.skipped = dict(result.skipped)
    # the newest reading judged so far (a run of late readings only leaves it where it was)
    out.evaluated_at = result.evaluated_at or since
    if since is not None and out.evaluated_at is not None and out.evaluated_at < since:
        out.evaluated_at = since  # readings of unconfigured sensors only, or late ones: nothing newer
    changed = {i: us for i, us in marks_after.items() if marks.marks_us.get(i) != us}
    if changed:
        _marks_store(marks_us=changed, read_us=marks.marks_us)
    state.state = result.tracker.state_dump()
    state.evaluated_at = out.evaluated_at
    state.save()


def evaluation_run(*, run=None) -> EvaluationOutcome:
    """Evaluate the readings no run has judged yet, late ones included (one transaction; the tracker row is
    locked so runs and dispatcher actions never interleave)."""
    out = EvaluationOutcome()
    clock = time.perf_counter()
    with transaction.atomic():
        t = time.perf_counter()
        state = tracker_state_lock(with_state=False)
        since = out.since = state.evaluated_at
        marks = series_marks()
        # a new tracker row (no evaluation yet) has judged nothing: earlier rows' marks do not count for it
        judged = marks.marks_us if since is not None else {}
        pending = marks.pending(marks_us=judged)
        out.seconds["lock"] = time.perf_counter() - t
        if not pending:
            out.nothing_new, out.evaluated_at = True, since
            out.seconds["total"] = time.perf_counter() - clock
            return out
        t = time.perf_counter()
        setup = evaluation_setup()
        out.seconds["setup"] = time.perf_counter() - t
        out.sensors = len(setup.configs)
        start = _context_start(since=since, latest=marks.latest, judged=judged, pending=pending)
        t = time.perf_counter()
        kept = _carry_take(state=state, setup=setup, backfills=marks.backfills, marks_us=judged)
        carry = kept.carry if kept is not None else None
        series = _series_read(setup=setup, carry=carry, start=start)
        out.carried = carry is not None
        out.seconds["load"] = time.perf_counter() - t
        out.readings_loaded = sum(len(s.times_ns) for s in series)
        since_by_sensor = _sensor_marks(setup=setup, judged=judged, since=since, start=start)
        marks_after = _marks_after(setup=setup, marks=marks, judged=judged, pending=pending, series=series, out=out)
        t = time.perf_counter()
        # the tracker this worker left, unless someone wrote the row since (a dispatcher, another worker)
        tracker = kept.tracker if kept is not None and kept.updated_at == state.updated_at else tracker_load(state)
        out.seconds["tracker_load"] = time.perf_counter() - t
        t = time.perf_counter()
        result = _replay_uncollected(series=series, sensors=setup.configs, tracker=tracker, since=since, carry=carry,
                                     since_by_sensor=since_by_sensor)
        out.seconds["replay"] = time.perf_counter() - t
        t = time.perf_counter()
        _result_store(result=result, setup=setup, state=state, marks=marks, judged=judged, marks_after=marks_after,
                      since=since, run=run, out=out)
        out.seconds["store"] = time.perf_counter() - t
        if result.carry is not None:
            _kept[state.name] = _Kept(carry=result.carry, tracker=result.tracker.resumed(), generation=state.generation,
                                      fingerprint=setup.fingerprint, evaluated_at=out.evaluated_at,
                                      updated_at=state.updated_at, backfills=marks.backfills, marks_us=marks_after)
    out.seconds["total"] = time.perf_counter() - clock
    return out
