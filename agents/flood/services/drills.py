"""Drills: a readings file through the live evaluation loop in memory, tick by tick, against the city's
sensors and zones, with automatic (or recorded) closure-lift confirmations. A drill never touches the live
alerts, closures, notifications or work orders: its alert log is its result.

Two ways in, one tick (`drill_step`): `replay_readings` runs the whole file in one process (`drill_replay`),
and the flood panel starts a `Drill` row whose ticks run as tasks, paced at the chosen speed, that a
dispatcher can pause, resume and stop. Either way the same file gives the same alert log.

A panel drill's file (up to 5 MB) is parsed once per worker process, not once per tick: the parsed readings
are kept in a small LRU keyed by (drill, file digest) and the city's configuration fingerprint they were
matched against (`drill_file`); another worker, a changed file or a changed city parses again."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import MD5
from django.utils.translation import gettext as _

from city_ops.core.services import audit_record
from city_ops.queues import Queue

from ..domain import (
    AlertTracker,
    InputEvent,
    Reading,
    ReadingsFormatError,
    ReplayResult,
    readings_parse,
    readings_replay,
)
from ..domain.vocabulary import RowError
from ..models import Drill
from ..selectors import (
    EvaluationSetup,
    config_sensor_code,
    config_statistic,
    context_window,
    evaluation_setup,
    tracker_settings,
)

log = logging.getLogger(__name__)

AUTO_ACTOR = "drill:auto-confirm"
NOT_IN_CITY = "not a sensor of this city (or in no zone)"
MAX_DRILL_BYTES = 5 * 1024 * 1024
# Parsed drill files a worker process keeps (a 5 MB CSV is ~150,000 readings, about 45 MB of Python objects):
# the panel runs one drill at a time, so a few cover one starting while another ends, in bounded memory.
DRILL_FILES_KEPT = 3


@dataclass
class DrillPosition:
    """Where a drill stands between ticks: the end of its next tick, the tracker as the last tick left it
    (`state_dump`), the reading time evaluated up to, and the closure-lift confirmations the stand-in
    dispatcher owes after a tick's last reading. `sensors`: the codes of the city's sensors the file names
    (set at the start, carried as is), so the panel's map shows the drill's sensors before they alert."""

    tick_end: dt.datetime
    state: dict | None = None
    since: dt.datetime | None = None
    owed: list[InputEvent] = field(default_factory=list)
    sensors: list[str] = field(default_factory=list)

    def dump(self) -> dict:
        """JSON for the Drill row."""
        return {
            "tick_end": self.tick_end.isoformat(),
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "owed": [
                {
                    "time": e.time.isoformat(),
                    "kind": e.kind,
                    "zone": e.zone,
                    "actor": e.actor,
                    "hazard": e.hazard,
                }
                for e in self.owed
            ],
            "sensors": self.sensors,
        }

    @classmethod
    def load(cls, data: dict) -> DrillPosition:
        """The position `dump` wrote."""
        return cls(
            tick_end=dt.datetime.fromisoformat(data["tick_end"]),
            state=data.get("state"),
            since=dt.datetime.fromisoformat(data["since"]) if data.get("since") else None,
            owed=[
                InputEvent(
                    time=dt.datetime.fromisoformat(e["time"]),
                    kind=e["kind"],
                    zone=e["zone"],
                    actor=e["actor"],
                    hazard=e["hazard"],
                )
                for e in data.get("owed", [])
            ],
            sensors=list(data.get("sensors", [])),
        )


def drill_readings(*, readings: Sequence[Reading], setup: EvaluationSetup) -> tuple[list[Reading], int]:
    """A file's readings under the config names of the city's sensors (a sensor in two zones twice; a daily
    value under its judged daily series, never an instantaneous one), and how many name no evaluated series
    of the city."""
    names: dict[tuple[str, str, str], list[str]] = {}
    for name, series_id in setup.series_of_config.items():
        series = (config_sensor_code(name), setup.parameter_of_series[series_id], config_statistic(name))
        names.setdefault(series, []).append(name)
    out, unknown = [], 0
    for reading in readings:
        series = (reading.sensor, reading.parameter, reading.statistic)
        unknown += series not in names
        for i, name in enumerate(names.get(series, ())):
            out.append(
                Reading(
                    sensor=name,
                    parameter=reading.parameter,
                    time=reading.time,
                    value=reading.value,
                    unit=reading.unit,
                    row=reading.row,
                    id=reading.key if i else None,
                )
            )
    return out, unknown


def drill_step(
    *,
    readings: Sequence[Reading],
    setup: EvaluationSetup,
    position: DrillPosition,
    step: dt.timedelta,
    auto_confirm_after: dt.timedelta | None,
    inputs: Sequence[InputEvent] = (),
) -> tuple[ReplayResult, DrillPosition]:
    """One tick of a drill, as a live run does it: the readings up to the tick's end (and a context window
    before the time evaluated up to) through `readings_replay`, with the tracker resumed from the position.
    Returns the tick's result and the position for the next tick."""
    window = context_window()
    chunk = [
        r
        for r in readings
        if r.time <= position.tick_end and (position.since is None or r.time > position.since - window)
    ]
    tracker = (
        AlertTracker.state_load(json.loads(json.dumps(position.state)), settings=tracker_settings())
        if position.state
        else AlertTracker(settings=tracker_settings())
    )
    out = readings_replay(
        readings=chunk,
        sensors=setup.configs,
        tracker=tracker,
        inputs=[*inputs, *position.owed],
        since=position.since,
        auto_confirm_after=auto_confirm_after,
        auto_actor=AUTO_ACTOR,
    )
    owed = list(position.owed)
    if auto_confirm_after is not None and out.evaluated_at is not None:
        # A confirmation the stand-in dispatcher owes after this tick's last reading becomes a recorded input
        # of the following ticks (the core confirms the ones due within a tick itself).
        owed.extend(
            InputEvent(
                time=e.time + auto_confirm_after,
                kind="closure_lift_confirm",
                zone=e.zone,
                hazard=e.hazard,
                actor=AUTO_ACTOR,
            )
            for e in out.events
            if e.kind == "closure_lift_proposed" and e.time + auto_confirm_after > out.evaluated_at
        )
    return out, DrillPosition(
        tick_end=position.tick_end + step,
        state=out.tracker.state_dump(),
        since=out.evaluated_at or position.since,
        owed=owed,
        sensors=position.sensors,
    )


# --------------------------------------------------------------------------------------------- one process


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
        return {
            "readings": self.readings,
            "ticks": self.ticks,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "rejected": [{"row": e.row, "reason": e.reason} for e in self.rejected],
            "skipped": self.skipped,
            "input_errors": self.input_errors,
            "events": self.events,
        }


def drill_replay(
    *,
    data: bytes,
    fmt: str | None = None,
    tz: str | None = None,
    sensor: str | None = None,
    speed: float = 0.0,
    step: dt.timedelta = dt.timedelta(minutes=15),
    auto_confirm_after: dt.timedelta | None = dt.timedelta(minutes=10),
    inputs: Sequence[InputEvent] = (),
    on_events: Callable[[list[dict]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DrillResult:
    """Replay a readings file through the live loop for a drill: ticks of `step` reading time (`drill_step`),
    paced at `speed` x real time (0: as fast as possible). Proposed closure lifts are confirmed
    `auto_confirm_after` later (a stand-in dispatcher) unless `inputs` records the real confirmations. The
    sensors and zones are the city's; nothing is written to the database."""
    from .ingest import series_index

    _, default_parameter = series_index()
    parsed = readings_parse(
        data=data, fmt=fmt, tz=tz, default_parameter_for=default_parameter.get, sensor=sensor
    )
    setup = evaluation_setup()
    readings, unknown = drill_readings(readings=parsed.readings, setup=setup)
    result = DrillResult(
        events=[],
        readings=len(parsed.readings),
        rejected=list(parsed.rejected),
        ticks=0,
        skipped={NOT_IN_CITY: unknown} if unknown else {},
        input_errors=[],
        start=None,
        end=None,
    )
    if not readings:
        return result
    times = sorted(r.time for r in readings)
    result.start, result.end = times[0], times[-1]
    position = DrillPosition(tick_end=times[0] + step)
    while True:
        out, following = drill_step(
            readings=readings,
            setup=setup,
            position=position,
            step=step,
            auto_confirm_after=auto_confirm_after,
            inputs=inputs,
        )
        result.ticks += 1
        logged = out.event_log()
        result.events.extend(logged)
        result.input_errors.extend(out.input_errors)
        for key, n in out.skipped.items():
            result.skipped[key] = max(result.skipped.get(key, 0), n)
        if logged and on_events:
            on_events(logged)
        if position.tick_end >= times[-1]:
            break
        if speed > 0:
            sleep(step.total_seconds() / speed)
        position = following
    return result


# --------------------------------------------------------------------------------------------- from the panel


@dataclass(frozen=True)
class DrillFile:
    """A panel drill's file as its ticks use it: the readings under the config names of the city's sensors
    (`drill_readings`), the rows the parser refused, how many readings name no sensor of the city, and the
    fingerprint of the city's configuration the readings were matched against. Shared between ticks, so
    nothing may change it (`Reading` is frozen; `drill_step` filters into new lists)."""

    readings: list[Reading]
    rejected: list[RowError]
    unknown: int
    fingerprint: str


_files: OrderedDict[tuple[int, str], DrillFile] = OrderedDict()
_files_lock = threading.Lock()  # a worker with a thread pool runs several drills' ticks at once
_files_counts = {"hits": 0, "misses": 0}


def drill_digest(*, data: bytes) -> str:
    """The digest a drill's file is known by: MD5 hex, what PostgreSQL's `md5(bytea)` gives, so a tick reads
    the stored file's digest without fetching the file (an identity check, not a security one)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _drill_parse(*, data: bytes, fmt: str, tz: str, setup: EvaluationSetup) -> DrillFile:
    from .ingest import series_index

    _, default_parameter = series_index()
    parsed = readings_parse(
        data=data, fmt=fmt or None, tz=tz or None, default_parameter_for=default_parameter.get
    )
    readings, unknown = drill_readings(readings=parsed.readings, setup=setup)
    return DrillFile(
        readings=readings, rejected=list(parsed.rejected), unknown=unknown, fingerprint=setup.fingerprint
    )


def drill_file(*, drill: Drill, digest: str, setup: EvaluationSetup) -> DrillFile:
    """A drill's parsed file, from this process's LRU when a previous tick here parsed the same file
    (`digest`) against the same city configuration (`setup`), else parsed now and kept (the least recently
    used of more than `DRILL_FILES_KEPT` dropped). A miss reads `drill.data`, which the caller may defer:
    a hit never fetches the file. Either way the same readings, in the same order: the same alert log."""
    key = (drill.pk, digest)
    with _files_lock:
        kept = _files.get(key)
        if kept is not None and kept.fingerprint == setup.fingerprint:
            _files.move_to_end(key)
            _files_counts["hits"] += 1
            return kept
        _files_counts["misses"] += 1
    data = bytes(drill.data)
    if drill_digest(data=data) != digest:  # the file changed between reading its digest and the file
        raise ValueError("the drill's file changed while it was read")
    parsed = _drill_parse(data=data, fmt=drill.fmt, tz=drill.tz, setup=setup)
    with _files_lock:
        _files[key] = parsed
        _files.move_to_end(key)
        while len(_files) > DRILL_FILES_KEPT:
            _files.popitem(last=False)
    return parsed


def drill_files_info() -> dict[str, int]:
    """How this process's drill ticks found their files: `hits` (kept), `misses` (parsed), `kept` (now)."""
    with _files_lock:
        return {**_files_counts, "kept": len(_files)}


def drill_files_clear() -> None:
    """Forget the parsed files this process keeps (what a fresh worker starts from)."""
    with _files_lock:
        _files.clear()


def _tick_enqueue(*, drill: Drill, delay_s: float = 0.0) -> None:
    """Send the drill's next tick after this transaction commits, `delay_s` later (its pace)."""
    from ..tasks import drill_tick

    drill_id, tick = drill.pk, drill.ticks
    transaction.on_commit(
        lambda: drill_tick.apply_async(
            args=[drill_id, tick], queue=Queue.DEFAULT.value, countdown=max(0.0, delay_s)
        )
    )


@transaction.atomic
def drill_start(
    *,
    data: bytes,
    name: str,
    user,
    speed: float,
    step: dt.timedelta = dt.timedelta(minutes=15),
    auto_confirm_after: dt.timedelta | None = dt.timedelta(minutes=10),
    fmt: str | None = None,
    tz: str | None = None,
    scenario: str = "",
) -> Drill:
    """Start a drill from the panel: the file is read now (an unreadable one, or one naming none of the
    city's sensors, is refused with the reason) and its ticks run as tasks at `speed` x real time."""
    if speed < 0:
        raise ValidationError(_("The speed is 0 (as fast as possible) or more."))
    if step <= dt.timedelta(0):
        raise ValidationError(_("A tick must cover some reading time."))
    if len(data) > MAX_DRILL_BYTES:
        raise ValidationError(
            _("The file is larger than %(mb)s MB.") % {"mb": MAX_DRILL_BYTES // (1024 * 1024)}
        )
    drill = Drill(
        name=name[:200],
        scenario=scenario,
        data=data,
        fmt=fmt or "",
        tz=tz or "",
        speed=speed,
        step_min=step.total_seconds() / 60,
        started_by=user if getattr(user, "is_authenticated", False) else None,
        auto_confirm_min=auto_confirm_after.total_seconds() / 60 if auto_confirm_after else None,
    )
    # Parsed here only to refuse a bad file with the reason: the ticks run in a worker, which parses it once
    # (`drill_file`); keeping it in this (web) process would hold megabytes nobody reads again.
    try:
        parsed = _drill_parse(data=data, fmt=drill.fmt, tz=drill.tz, setup=evaluation_setup())
    except ReadingsFormatError as exc:
        raise ValidationError(f"{name}: {exc}") from None
    readings = parsed.readings
    if not readings:
        raise ValidationError(
            _("%(name)s: no reading names a sensor of this city that lies in a flood zone") % {"name": name}
        )
    times = sorted(r.time for r in readings)
    drill.start, drill.end, drill.clock = times[0], times[-1], times[0]
    drill.readings = len({(config_sensor_code(r.sensor), r.parameter, r.time) for r in readings})
    drill.rejected = [{"row": e.row, "reason": e.reason} for e in parsed.rejected][:200]
    drill.skipped = {NOT_IN_CITY: parsed.unknown} if parsed.unknown else {}
    drill.position = DrillPosition(
        tick_end=times[0] + step, sensors=sorted({config_sensor_code(r.sensor) for r in readings})
    ).dump()
    drill.save()
    audit_record(
        action="flood.drill_started",
        obj=drill,
        actor=user,
        changes={"name": drill.name, "speed": speed, "step_min": drill.step_min},
    )
    _tick_enqueue(drill=drill)
    return drill


def drill_tick_advance(*, drill_id: int, tick: int) -> Drill | None:
    """Run tick number `tick` of a running drill and send the next one at the drill's pace. A message for a
    tick already run, or for a drill paused or stopped since, does nothing (returns None)."""
    with transaction.atomic():
        # the file stays in the database (PostgreSQL hashes it there): a tick that finds it parsed in this
        # process neither fetches nor parses it, and the save below never writes it back
        drill = (
            Drill.objects.select_for_update()
            .defer("data")
            .annotate(digest=MD5("data"))
            .filter(pk=drill_id)
            .first()
        )
        if drill is None or drill.status != Drill.Status.RUNNING or drill.ticks != tick:
            return None
        step = dt.timedelta(minutes=drill.step_min)
        auto = dt.timedelta(minutes=drill.auto_confirm_min) if drill.auto_confirm_min is not None else None
        position = DrillPosition.load(drill.position)
        try:
            setup = evaluation_setup()
            file = drill_file(drill=drill, digest=drill.digest, setup=setup)
            out, following = drill_step(
                readings=file.readings, setup=setup, position=position, step=step, auto_confirm_after=auto
            )
        except (ReadingsFormatError, ValueError, KeyError) as exc:  # the city's sensors changed under it
            log.exception("drill %s failed at tick %s", drill.pk, tick)
            drill.status, drill.error = Drill.Status.FAILED, f"tick {tick}: {exc}"[:2000]
            drill.save(update_fields=["status", "error", "updated_at"])
            return drill
        drill.events = [*drill.events, *out.event_log()]
        drill.ticks += 1
        drill.clock = min(position.tick_end, drill.end)
        drill.position = following.dump()
        if position.tick_end >= drill.end:
            drill.status = Drill.Status.FINISHED
        drill.save(update_fields=["events", "ticks", "clock", "position", "status", "updated_at"])
        if drill.status == Drill.Status.RUNNING:
            _tick_enqueue(drill=drill, delay_s=step.total_seconds() / drill.speed if drill.speed > 0 else 0.0)
    return drill


def _drill_move(*, drill: Drill, user, allowed: tuple[str, ...], to: str, verb: str, refused: str) -> Drill:
    drill = Drill.objects.select_for_update().defer("data").get(pk=drill.pk)
    if drill.status not in allowed:
        raise ValidationError(refused)
    previous, drill.status = drill.status, to
    drill.save(update_fields=["status", "updated_at"])
    audit_record(action=f"flood.drill_{verb}", obj=drill, actor=user, changes={"from": previous, "to": to})
    return drill


@transaction.atomic
def drill_pause(*, drill: Drill, user) -> Drill:
    """Hold a running drill where it is (the tick in flight, if any, finds it paused and stops there)."""
    return _drill_move(
        drill=drill,
        user=user,
        allowed=(Drill.Status.RUNNING,),
        to=Drill.Status.PAUSED,
        verb="paused",
        refused=_("Only a running drill can be paused."),
    )


@transaction.atomic
def drill_resume(*, drill: Drill, user) -> Drill:
    """Go on with a paused drill from its next tick."""
    drill = _drill_move(
        drill=drill,
        user=user,
        allowed=(Drill.Status.PAUSED,),
        to=Drill.Status.RUNNING,
        verb="resumed",
        refused=_("Only a paused drill can be resumed."),
    )
    _tick_enqueue(drill=drill)
    return drill


@transaction.atomic
def drill_stop(*, drill: Drill, user) -> Drill:
    """End a drill before its file does; its log so far stays."""
    return _drill_move(
        drill=drill,
        user=user,
        allowed=(Drill.Status.RUNNING, Drill.Status.PAUSED),
        to=Drill.Status.STOPPED,
        verb="stopped",
        refused=_("Only a running or paused drill can be stopped."),
    )
