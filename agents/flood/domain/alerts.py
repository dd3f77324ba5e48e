"""The alert state machine: one open alert per (zone, hazard), driven only by rule results and input events.

- Escalation is immediate when the implied level goes up.
- Stepping down (or clearing) needs the level still supported with the rule's margin (`hold_level`) to stay
  below the alert's level for `hold` (default 30 min of reading time), so a value wobbling around a threshold
  does not raise-clear-raise. It steps down to the highest level supported during that time.
- Several sensors can feed one key (two rain gauges in a district): the key's implied level is the highest
  among their latest results that are still fresh (younger than `stale_after` at the key's clock, or than
  the result's own `valid_for`: a daily mean counts for days). With no fresh result the alert holds: missing data never
  clears an alert (a gauge washed away in the flood must not stand the city down).
- Late results (a sensor's batch uploaded after other sensors of the key had moved its clock on, see
  `observe`) still count: each sensor's latest result is the newest one it gave, the key's clock never
  goes back, freshness and hold times run on that clock (never negative; a late low value cannot shorten
  a hold, a late high one restarts it), and the events carry the reading time plus `key_time` and
  `late_minutes` so the log is explicable.
- Dispatchers acknowledge alerts and confirm closure lifts; both are input events with an actor and a time.
- Waterlogging keys also carry the road closure: requested -> lift proposed -> lifted (after confirmation).
  An alert with a closure in force is not cleared until the closure is lifted.

Every change is an AlertEvent with the reading time, level, rule, evidence and actor. The tracker never reads
the clock, so feeding it the same results and inputs in the same order always gives the same event log.
`state_dump`/`state_load` carry it between runs (e.g. Celery tasks) as JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from .qc import SensorFault
from .rules import RuleResult
from .vocabulary import Level, utc


class AlertStateError(ValueError):
    """An input event that does not fit the alert's state (acknowledging a closed alert, lifting a closure
    nobody proposed to lift)."""


@dataclass(frozen=True)
class TrackerSettings:
    """Hysteresis and freshness of the alert state machine."""

    hold: dt.timedelta = dt.timedelta(minutes=30)  # how long a lower level must last before stepping down
    stale_after: dt.timedelta = dt.timedelta(hours=2)  # a sensor's result older than this no longer counts


@dataclass(frozen=True)
class AlertEvent:
    """One state change, in the order it happened (`seq`), at a reading (or input) time."""

    seq: int
    kind: str
    time: dt.datetime
    zone: str
    hazard: str
    level: Level
    previous_level: Level
    rule: str
    evidence: tuple[str, ...]
    alert_id: str
    actor: str | None = None
    sensor: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (levels as colour names, time as ISO 8601 UTC)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "time": self.time.isoformat(),
            "zone": self.zone,
            "hazard": self.hazard,
            "level": self.level.label,
            "previous_level": self.previous_level.label,
            "rule": self.rule,
            "evidence": list(self.evidence),
            "alert_id": self.alert_id,
            "actor": self.actor,
            "sensor": self.sensor,
            "detail": dict(self.detail),
        }


@dataclass
class OpenAlert:
    """The state of one open alert."""

    alert_id: str
    zone: str
    hazard: str
    level: Level
    raised_at: dt.datetime
    rule: str
    evidence: tuple[str, ...]
    sensor: str | None
    raised_by_forecast: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    lower_since: dt.datetime | None = None
    lower_target: Level = Level.NONE
    closure: str = "none"  # "none" | "requested" | "lift_proposed"
    closure_requested_at: dt.datetime | None = None
    first_crossing_at: dt.datetime | None = None  # first observed warning crossing (lead-time KPI)


@dataclass
class _KeyState:
    latest: dict[str, RuleResult] = field(default_factory=dict)
    last_time: dt.datetime | None = None
    alert: OpenAlert | None = None


class AlertTracker:
    """Deterministic alert state machine (see module doc). Feed results in reading-time order."""

    def __init__(self, *, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.events: list[AlertEvent] = []
        self._keys: dict[tuple[str, str], _KeyState] = {}
        self._faults: dict[tuple[str, str, str], str] = {}  # (zone, hazard, sensor) -> fault kind
        self._seq_offset = 0  # events emitted before a state_load, so seq keeps counting

    # ------------------------------------------------------------------ queries
    def open_alerts(self) -> list[OpenAlert]:
        """Open alerts, ordered by zone and hazard."""
        return [state.alert for key, state in sorted(self._keys.items()) if state.alert is not None]

    def alert_get(self, *, zone: str, hazard: str) -> OpenAlert | None:
        """The open alert of a key, if any."""
        state = self._keys.get((zone, hazard))
        return state.alert if state else None

    def faults(self) -> dict[tuple[str, str, str], str]:
        """Sensors currently in fault: (zone, hazard, sensor) -> "stuck" | "silent"."""
        return dict(self._faults)

    # ------------------------------------------------------------------ helpers
    def _emit(
        self,
        kind: str,
        *,
        zone: str,
        hazard: str,
        alert: OpenAlert | None,
        time: dt.datetime,
        rule: str,
        evidence: tuple[str, ...] = (),
        level: Level | None = None,
        previous_level: Level | None = None,
        sensor: str | None = None,
        actor: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> AlertEvent:
        """Append one event of the key (zone, hazard), citing its alert (if any). The level before and after
        are the alert's current one (none without an alert) unless the change says otherwise."""
        current = alert.level if alert is not None else Level.NONE
        event = AlertEvent(
            seq=self._seq_offset + len(self.events) + 1,
            kind=kind,
            time=time,
            zone=zone,
            hazard=hazard,
            level=current if level is None else level,
            previous_level=current if previous_level is None else previous_level,
            rule=rule,
            evidence=evidence,
            alert_id=alert.alert_id if alert is not None else "",
            actor=actor,
            sensor=sensor,
            detail=detail if detail is not None else {},
        )
        self.events.append(event)
        return event

    def _emit_led(
        self,
        kind: str,
        *,
        alert: OpenAlert,
        leader: RuleResult,
        time: dt.datetime,
        detail: Mapping[str, object],
        level: Level | None = None,
        previous_level: Level | None = None,
    ) -> AlertEvent:
        """An event of `alert` that the deciding rule result (`leader`) explains: its rule, evidence, sensor."""
        return self._emit(
            kind,
            zone=alert.zone,
            hazard=alert.hazard,
            alert=alert,
            time=time,
            rule=leader.rule,
            evidence=leader.evidence,
            level=level,
            previous_level=previous_level,
            sensor=leader.sensor,
            detail=detail,
        )

    def _stale(self, result: RuleResult, now: dt.datetime) -> bool:
        """Whether a result no longer counts at `now`: older than its own validity (a daily mean's day and
        the day it takes to arrive) or else the tracker's `stale_after`."""
        return result.time < now - (result.valid_for or self.settings.stale_after)

    def _fresh(self, state: _KeyState, now: dt.datetime) -> list[RuleResult]:
        return [r for _, r in sorted(state.latest.items()) if not self._stale(r, now)]

    @staticmethod
    def _leader(results: list[RuleResult], current: RuleResult) -> RuleResult:
        """The result that decides: highest level; the current one on ties, then by sensor name."""
        best = max(r.level for r in results)
        if current.level == best and current in results:
            return current
        return next(r for r in results if r.level == best)

    # ------------------------------------------------------------------ rule results
    def observe(self, *, zone: str, result: RuleResult) -> list[AlertEvent]:
        """Take one rule result for `zone`; returns the events it caused (also appended to `events`).

        A result older than the key's clock (the newest result time it has taken, any sensor) is late: its
        sensor's readings were uploaded after another sensor's newer ones had been judged. It still counts
        as its sensor's latest result, judged with the results the key holds at its clock: it can raise or
        escalate (events stamped with its reading time, with `key_time` and `late_minutes` in the detail),
        a late value that supports the level restarts a hold, and holds start and run on the clock, so a
        late low value never shortens one and no hold is negative. A result already stale at the clock is
        kept and decides nothing; one older than its own sensor's latest is dropped (the live loop judges
        each reading once, each sensor in time order). In one replay no result is late: nothing changes."""
        key = (zone, result.hazard)
        state = self._keys.setdefault(key, _KeyState())
        now = utc(result.time)
        own = state.latest.get(result.sensor)
        if own is not None and now < utc(own.time):
            return []
        clock = now if state.last_time is None or now >= state.last_time else state.last_time
        state.last_time = clock
        state.latest[result.sensor] = result
        if self._stale(result, clock):
            return []
        fresh = self._fresh(state, clock)
        if not fresh:
            return []
        late = {} if clock == now else {"key_time": clock.isoformat(),
                                         "late_minutes": round((clock - now).total_seconds() / 60, 1)}
        leader = self._leader(fresh, result)
        level = leader.level
        hold = max(r.hold_level for r in fresh)
        start = len(self.events)
        alert = state.alert

        if alert is None:
            if level > Level.NONE:
                alert = OpenAlert(
                    # named by the clock: a late raise may predate an alert of this key raised and cleared since
                    alert_id=f"{zone}/{result.hazard}/{clock.strftime('%Y%m%dT%H%M%SZ')}",
                    zone=zone,
                    hazard=result.hazard,
                    level=level,
                    raised_at=now,
                    rule=leader.rule,
                    evidence=leader.evidence,
                    sensor=leader.sensor,
                    raised_by_forecast=leader.forecast,
                )
                state.alert = alert
                self._emit_led(
                    "raised",
                    alert=alert,
                    leader=leader,
                    time=now,
                    previous_level=Level.NONE,
                    detail={**leader.detail, "forecast": leader.forecast, **late},
                )
        elif level > alert.level:
            previous = alert.level
            alert.level, alert.rule, alert.evidence, alert.sensor = (
                level,
                leader.rule,
                leader.evidence,
                leader.sensor,
            )
            alert.lower_since, alert.lower_target = None, Level.NONE
            alert.acknowledged_by = alert.acknowledged_at = None  # a higher level needs a new acknowledgement
            self._emit_led(
                "escalated",
                alert=alert,
                leader=leader,
                time=now,
                previous_level=previous,
                detail={**leader.detail, "forecast": leader.forecast, **late},
            )
        elif hold < alert.level:
            if alert.lower_since is None:
                alert.lower_since, alert.lower_target = clock, hold
            else:
                alert.lower_target = max(alert.lower_target, hold)
            if clock - alert.lower_since >= self.settings.hold:
                self._step_down(state, leader, now, clock, late)
        else:
            alert.lower_since, alert.lower_target = None, Level.NONE

        if state.alert is not None and result.hazard == "waterlogging":
            self._closure_update(state, fresh, leader, now, late)
        return self.events[start:]

    def _step_down(self, state: _KeyState, leader: RuleResult, now: dt.datetime, clock: dt.datetime,
                   late: Mapping[str, object]) -> None:
        alert = state.alert
        assert alert is not None
        target = alert.lower_target
        previous = alert.level
        held_for = round((clock - alert.lower_since).total_seconds() / 60, 1) if alert.lower_since else 0.0
        detail = {"below_for_minutes": held_for, "implied_level": leader.level.label, **late}
        if target == Level.NONE and alert.closure == "none":
            self._emit_led("cleared", alert=alert, leader=leader, time=now, level=Level.NONE, detail=detail)
            state.alert = None
            return
        if target == Level.NONE:
            return  # a closure is still in force: keep the alert (and keep counting) until it is lifted
        alert.level, alert.rule, alert.evidence = target, leader.rule, leader.evidence
        alert.lower_since, alert.lower_target = None, Level.NONE
        self._emit_led(
            "de-escalated", alert=alert, leader=leader, time=now, previous_level=previous, detail=detail
        )

    def _closure_update(
        self, state: _KeyState, fresh: list[RuleResult], leader: RuleResult, now: dt.datetime,
        late: Mapping[str, object],
    ) -> None:
        alert = state.alert
        assert alert is not None
        needed = [r for r in fresh if r.closure_needed]
        if alert.closure == "none":
            if needed:
                trigger = needed[0] if leader not in needed else leader
                alert.closure, alert.closure_requested_at = "requested", now
                self._emit_led(
                    "closure_requested",
                    alert=alert,
                    leader=trigger,
                    time=now,
                    detail={"depth_cm": trigger.detail.get("depth_cm"), **late},
                )
            return
        ready = not needed and all(r.lift_ready for r in fresh)
        if alert.closure == "requested" and ready:
            alert.closure = "lift_proposed"
            self._emit(
                "closure_lift_proposed",
                zone=alert.zone,
                hazard=alert.hazard,
                alert=alert,
                time=now,
                rule="depth_clear_for_hold",
                evidence=tuple(key for r in fresh for key in r.evidence),
                sensor=leader.sensor,
                detail={"clear_minutes": min(float(r.detail.get("clear_minutes", 0.0)) for r in fresh), **late},
            )
        elif alert.closure == "lift_proposed" and not ready:
            alert.closure = "requested"
            self._emit_led(
                "closure_lift_withdrawn",
                alert=alert,
                leader=leader,
                time=now,
                detail={"depth_cm": leader.detail.get("depth_cm"), **late},
            )

    # ------------------------------------------------------------------ input events
    def acknowledge(self, *, zone: str, hazard: str, actor: str, time: dt.datetime) -> list[AlertEvent]:
        """A dispatcher acknowledges the open alert of (zone, hazard)."""
        state = self._keys.get((zone, hazard))
        alert = state.alert if state else None
        if alert is None:
            raise AlertStateError(f"no open {hazard} alert in zone {zone!r} to acknowledge")
        if not actor:
            raise AlertStateError("an acknowledgement needs the dispatcher who gives it")
        now = utc(time)
        alert.acknowledged_by, alert.acknowledged_at = actor, now
        return [
            self._emit(
                "acknowledged", zone=zone, hazard=hazard, alert=alert, time=now, rule=alert.rule, actor=actor
            )
        ]

    def closure_lift_confirm(
        self, *, zone: str, hazard: str = "waterlogging", actor: str, time: dt.datetime
    ) -> list[AlertEvent]:
        """A dispatcher confirms the proposed closure lift (in a replay: a recorded or automatic one)."""
        state = self._keys.get((zone, hazard))
        alert = state.alert if state else None
        if alert is None or alert.closure != "lift_proposed":
            raise AlertStateError(f"no closure lift proposed in zone {zone!r} ({hazard}) to confirm")
        if not actor:
            raise AlertStateError("a closure lift needs the dispatcher who confirms it")
        alert.closure = "none"
        return [
            self._emit(
                "closure_lifted",
                zone=zone,
                hazard=hazard,
                alert=alert,
                time=utc(time),
                rule="dispatcher_confirmed",
                actor=actor,
            )
        ]

    def sensor_fault(self, *, zone: str, hazard: str, sensor: str, fault: SensorFault) -> list[AlertEvent]:
        """A sensor fault notice (once per fault episode). The sensor's last result stops counting, so its
        suspect values neither raise nor hold the alert; other sensors of the key still decide."""
        key = (zone, hazard, sensor)
        if self._faults.get(key) == fault.kind:
            return []
        self._faults[key] = fault.kind
        state = self._keys.setdefault((zone, hazard), _KeyState())
        state.latest.pop(sensor, None)
        return [
            self._emit(
                "sensor_fault",
                zone=zone,
                hazard=hazard,
                alert=state.alert,
                time=utc(fault.at),
                rule=f"sensor_{fault.kind}",
                sensor=sensor,
                detail={"fault": fault.kind, "since": fault.since.isoformat(), "reason": fault.reason},
            )
        ]

    def sensor_restored(self, *, zone: str, hazard: str, sensor: str, time: dt.datetime) -> list[AlertEvent]:
        """The sensor reports good readings again after a fault."""
        kind = self._faults.pop((zone, hazard, sensor), None)
        if kind is None:
            return []
        state = self._keys.get((zone, hazard))
        return [
            self._emit(
                "sensor_restored",
                zone=zone,
                hazard=hazard,
                alert=state.alert if state else None,
                time=utc(time),
                rule=f"sensor_{kind}_ended",
                sensor=sensor,
                detail={"fault": kind},
            )
        ]

    # ------------------------------------------------------------------ persistence
    def resumed(self) -> AlertTracker:
        """The same state with the event log handed over (sequence numbers go on): what
        `state_load(state_dump())` gives, without the round trip, for a caller that keeps its tracker
        between runs. This tracker should not be fed any more."""
        tracker = AlertTracker(settings=self.settings)
        tracker._keys, tracker._faults = self._keys, self._faults
        tracker._seq_offset = self._seq_offset + len(self.events)
        return tracker

    def state_dump(self) -> dict[str, object]:
        """The tracker's state as JSON-friendly data (open alerts, sensors' latest results, faults).

        The event log itself is not included: events are emitted to be stored by the caller; only the
        sequence number carries over so a resumed tracker keeps counting."""
        keys = []
        for (zone, hazard), state in sorted(self._keys.items()):
            keys.append(
                {
                    "zone": zone,
                    "hazard": hazard,
                    "last_time": state.last_time.isoformat() if state.last_time else None,
                    "latest": [_result_dump(r) for _, r in sorted(state.latest.items())],
                    "alert": _alert_dump(state.alert) if state.alert else None,
                }
            )
        faults = [
            {"zone": z, "hazard": h, "sensor": s, "kind": k} for (z, h, s), k in sorted(self._faults.items())
        ]
        return {
            "version": 1,
            "next_seq": len(self.events) + self._seq_offset + 1,
            "keys": keys,
            "faults": faults,
        }

    @classmethod
    def state_load(
        cls, data: Mapping[str, object], *, settings: TrackerSettings | None = None
    ) -> AlertTracker:
        """A tracker resumed from `state_dump` output."""
        tracker = cls(settings=settings)
        tracker._seq_offset = int(data.get("next_seq", 1)) - 1  # type: ignore[arg-type]
        for item in data.get("keys", []):  # type: ignore[union-attr]
            state = _KeyState(
                latest={r["sensor"]: _result_load(r) for r in item["latest"]},
                last_time=_time_load(item["last_time"]),
                alert=_alert_load(item["alert"]) if item["alert"] else None,
            )
            tracker._keys[(item["zone"], item["hazard"])] = state
        for fault in data.get("faults", []):  # type: ignore[union-attr]
            tracker._faults[(fault["zone"], fault["hazard"], fault["sensor"])] = fault["kind"]
        return tracker


def _time_load(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _result_dump(result: RuleResult) -> dict[str, object]:
    return {
        "hazard": result.hazard,
        "sensor": result.sensor,
        "rule": result.rule,
        "level": result.level.label,
        "hold_level": result.hold_level.label,
        "time": result.time.isoformat(),
        "evidence": list(result.evidence),
        "detail": dict(result.detail),
        "forecast": result.forecast,
        "closure_needed": result.closure_needed,
        "lift_ready": result.lift_ready,
        "valid_for_s": result.valid_for.total_seconds() if result.valid_for else None,
    }


def _result_load(data: Mapping[str, object]) -> RuleResult:
    return RuleResult(
        hazard=data["hazard"],
        sensor=data["sensor"],
        rule=data["rule"],  # type: ignore[arg-type]
        level=Level.parse(data["level"]),
        hold_level=Level.parse(data["hold_level"]),  # type: ignore[arg-type]
        time=_time_load(data["time"]),
        evidence=tuple(data["evidence"]),  # type: ignore[arg-type]
        detail=dict(data["detail"]),
        forecast=bool(data["forecast"]),  # type: ignore[arg-type]
        closure_needed=bool(data["closure_needed"]),
        lift_ready=bool(data["lift_ready"]),
        # states saved before results carried a validity have none
        valid_for=dt.timedelta(seconds=data["valid_for_s"]) if data.get("valid_for_s") else None,
    )


_ALERT_TIMES = ("raised_at", "acknowledged_at", "lower_since", "closure_requested_at", "first_crossing_at")


def _alert_dump(alert: OpenAlert) -> dict[str, object]:
    data = dict(vars(alert))
    for name in _ALERT_TIMES:
        data[name] = data[name].isoformat() if data[name] else None
    data["level"] = alert.level.label
    data["lower_target"] = alert.lower_target.label
    data["evidence"] = list(alert.evidence)
    return data


def _alert_load(data: Mapping[str, object]) -> OpenAlert:
    values = dict(data)
    for name in _ALERT_TIMES:
        values[name] = _time_load(values[name])  # type: ignore[arg-type]
    values["level"] = Level.parse(values["level"])  # type: ignore[arg-type]
    values["lower_target"] = Level.parse(values["lower_target"])  # type: ignore[arg-type]
    values["evidence"] = tuple(values["evidence"])  # type: ignore[arg-type]
    return OpenAlert(**values)  # type: ignore[arg-type]
