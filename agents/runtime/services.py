"""The agent runtime's writes: create a run (the idempotency key), claim it, execute it, take back the runs
of dead workers."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_today

from .base import RUNTIME_PARAMS, AgentResult, RunContext
from .errors import TRANSIENT_ERRORS
from .models import AgentRun, AgentRunAttempt, RunKpi
from .registry import agent_get

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


def _enqueue(run: AgentRun) -> None:
    """Send the run to its agent's queue once the transaction that created it has committed."""
    agent = agent_get(run.agent)

    def _send():
        from .tasks import run_agent

        run_agent.apply_async(args=[run.pk], queue=agent.queue.value)
        AgentRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now())

    transaction.on_commit(_send)


def agent_run_create(
    *, agent: str, run_date: dt.date | None = None, trigger: str = AgentRun.Trigger.MANUAL, reason: str = "",
    params: dict | None = None, user=None, event=None, enqueue: bool = True, request_key: str = "",
) -> tuple[AgentRun, bool]:
    """Create a run and enqueue it after commit. Returns (run, created). The runtime's own entry point (beat,
    events, monitors): parameters are taken as given. What a user asks for goes through agent_run_request.

    A scheduled run of a daily agent exists once per date: asking again returns the existing run and
    enqueues nothing, which is what makes a doubled beat tick or a redelivered task harmless."""
    agent_obj = agent_get(agent)  # raises UnknownAgentError for a bad name
    run_date = run_date or city_today()
    fields = dict(agent=agent_obj.name, run_date=run_date, trigger=trigger, reason=reason[:300],
                  params=params or {}, created_by=user if getattr(user, "is_authenticated", False) else None,
                  event=event, request_key=request_key)
    if trigger == AgentRun.Trigger.SCHEDULE and agent_obj.daily:
        existing = AgentRun.objects.filter(agent=agent_obj.name, run_date=run_date, trigger=trigger).first()
        if existing:
            return existing, False
        try:
            with transaction.atomic():
                run = AgentRun.objects.create(**fields)
        except IntegrityError:  # a concurrent tick won the race
            return AgentRun.objects.get(agent=agent_obj.name, run_date=run_date, trigger=trigger), False
    else:
        run = AgentRun.objects.create(**fields)
    audit_record(action="agent_run.created", obj=run, actor=user, actor_label=f"agent:{agent}",
                 changes={"trigger": trigger, "reason": reason, "run_date": str(run_date)})
    if enqueue:
        _enqueue(run)
    return run, True


class RunParamsError(ValueError):
    """A user's run parameters were refused: `errors` maps each offending key to the reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def agent_run_params_clean(*, agent: str, params: dict | None) -> dict:
    """A user's run parameters checked against what the agent declares (`Agent.run_params`) and typed.

    One check for every door a user starts a run through (the API, the console, `run_agent`), so a bad value
    is refused when it is asked for, naming the key, rather than failing in the worker with a traceback."""
    declared = {p.name: p for p in agent_get(agent).run_params}
    cleaned, errors = {}, {}
    for key, value in (params or {}).items():
        if key in RUNTIME_PARAMS:
            errors[key] = "set by the runtime, not by a user"
        elif key not in declared:
            takes = ", ".join(p.describe() for p in declared.values()) or "no parameters"
            errors[key] = f"unknown parameter; {agent} takes {takes}"
        else:
            try:
                cleaned[key] = declared[key].clean(value)
            except ValueError as exc:
                errors[key] = str(exc)
    if errors:
        raise RunParamsError(errors)
    return cleaned


def run_params_parse(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` texts (`run_agent --param`, the console's parameters field) as a dict of texts; the values
    are typed by agent_run_params_clean."""
    params, errors = {}, {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            errors[pair] = "expected KEY=VALUE"
        params[key.strip()] = value.strip()
    if errors:
        raise RunParamsError(errors)
    return params


def _request_key(*, agent: str, trigger: str, run_date: dt.date, params: dict) -> str:
    body = json.dumps([agent, trigger, run_date.isoformat(), params], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def agent_run_request(
    *, agent: str, run_date: dt.date | None = None, trigger: str = AgentRun.Trigger.MANUAL, reason: str = "",
    params: dict | None = None, runtime_params: dict | None = None, user=None, enqueue: bool = True,
) -> tuple[AgentRun, bool]:
    """A run a user asks for (the API, the console, `run_agent`, an agent's "re-plan" buttons). Returns
    (run, created).

    `params` come from the user and are checked (`agent_run_params_clean`); `runtime_params` come from the
    calling code (the plan an edit is about) and are not. While an identical request (same agent, trigger,
    date and parameters) is pending or running, that run is returned and nothing new is queued: a burst of
    57 clicks is one run, not 57. A partial unique index on `request_key` makes this hold under races."""
    agent_obj = agent_get(agent)
    run_date = run_date or city_today()
    merged = {**agent_run_params_clean(agent=agent_obj.name, params=params), **(runtime_params or {})}
    key = _request_key(agent=agent_obj.name, trigger=trigger, run_date=run_date, params=merged)
    active = AgentRun.objects.filter(request_key=key, status__in=[AgentRun.Status.PENDING, AgentRun.Status.RUNNING])
    for _ in range(3):  # the active run may finish between a failed insert and the look-up: try again
        if existing := active.first():
            return existing, False
        try:
            with transaction.atomic():
                return agent_run_create(agent=agent_obj.name, run_date=run_date, trigger=trigger, reason=reason,
                                        params=merged, user=user, enqueue=enqueue, request_key=key)
        except IntegrityError:  # a concurrent identical request won the race
            continue
    raise RuntimeError(f"could not create or find the run for request {key}")


def worker_identity() -> str:
    """host:pid of the process executing runs (a prefork child, not the pool's parent): what the reaper
    asks about, and what an operator finds in `ps` on that host."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _liveness_key(*, run_id: int, worker: str) -> str:
    return f"agents:run-alive:{run_id}:{worker}"


def agent_run_claim(*, run_id: int, worker: str) -> AgentRun | None:
    """Claim a pending run with a conditional UPDATE (of two workers holding the same message, one wins) and
    open its attempt. Returns the claimed run, or None when it was not pending.

    `started_at` keeps the first attempt's start, so a re-done run's duration counts the time its dead
    worker lost; each attempt's own start and end are rows of `AgentRunAttempt`."""
    now = timezone.now()
    with transaction.atomic():
        claimed = AgentRun.objects.filter(pk=run_id, status=AgentRun.Status.PENDING).update(
            status=AgentRun.Status.RUNNING, claimed_by=worker, heartbeat_at=now, finished_at=None,
            started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
            attempts=F("attempts") + 1, error="",
        )
        if not claimed:
            return None
        run = AgentRun.objects.get(pk=run_id)
        AgentRunAttempt.objects.create(run=run, number=run.attempts, worker=worker, started_at=now)
    return run


def _run_release(*, run_id: int, worker: str, outcome: str, when: dt.datetime, only_if: dict | None = None,
                 **fields) -> bool:
    """Move a run out of `running` and end the worker's attempt, in one transaction, only while the run is
    still that worker's: an attempt taken back by the reaper that ends late, or a second reaper, changes
    nothing. `only_if` narrows the condition further (the reaper's read of the heartbeat)."""
    with transaction.atomic():
        if not AgentRun.objects.filter(pk=run_id, status=AgentRun.Status.RUNNING, claimed_by=worker,
                                       **(only_if or {})).update(**fields):
            return False
        AgentRunAttempt.objects.filter(run_id=run_id, worker=worker, ended_at__isnull=True).update(
            ended_at=when, outcome=outcome)
    return True


def agent_run_progress(*, run_id: int, done: int, total: int, message: str = "") -> None:
    AgentRun.objects.filter(pk=run_id).update(
        progress_done=done, progress_total=total, progress_message=message[:200], heartbeat_at=timezone.now())


class _Heartbeat(threading.Thread):
    """The run's sign of life while it executes: every quarter of the dead-after window it refreshes a
    liveness key in Redis that expires after the window, and the run's `heartbeat_at`. A killed process
    stops both, so the reaper can tell a dead worker from a long run within the window, not after a guess
    at the longest plan."""

    def __init__(self, *, run_id: int, worker: str):
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.run_id, self.worker = run_id, worker
        self.stop_event = threading.Event()

    def run(self) -> None:
        dead_after_s = settings.CITY_OPS_RUN_DEAD_AFTER_S
        try:
            while not self.stop_event.is_set() and self._beat(dead_after_s):
                self.stop_event.wait(dead_after_s / 4)
        finally:
            connection.close()  # this thread's own connection, not the run's

    def _beat(self, dead_after_s: float) -> bool:
        """One beat; False once the run is no longer this worker's (the reaper took it back). Each store is
        written even when the other fails: one fresh sign is enough to keep the run."""
        try:
            cache.set(_liveness_key(run_id=self.run_id, worker=self.worker), 1, timeout=dead_after_s)
        except Exception:  # the main thread will see a Redis problem itself; keep beating
            log.warning("liveness key of run %s not refreshed", self.run_id, exc_info=True)
        try:
            mine = AgentRun.objects.filter(pk=self.run_id, status=AgentRun.Status.RUNNING,
                                           claimed_by=self.worker).update(heartbeat_at=timezone.now())
        except Exception:  # likewise for the database
            log.warning("heartbeat of run %s not written", self.run_id, exc_info=True)
            return True
        finally:
            close_old_connections()
        if not mine and not self.stop_event.is_set():
            log.warning("run %s is no longer claimed by %s; its result here will be dropped", self.run_id, self.worker)
        return bool(mine)


def agent_run_execute(*, run_id: int, worker: str | None = None) -> AgentRun | None:
    """Run a claimed run to its end. Idempotent: a run that is not pending (done, or running elsewhere) is
    left alone and None is returned. Transient errors put the run back to pending and re-raise, so the
    Celery task retries it; other errors fail the run with the traceback recorded. An attempt whose run
    was taken back meanwhile (its worker looked dead) records nothing: the new attempt owns the run."""
    worker = worker or worker_identity()
    run = agent_run_claim(run_id=run_id, worker=worker)
    if run is None:
        log.info("run %s is not pending; nothing to do", run_id)
        return None
    agent = agent_get(run.agent)
    beat = _Heartbeat(run_id=run_id, worker=worker)
    beat.start()
    started = time.perf_counter()
    try:
        result = agent.run(RunContext(run=run))
        if not isinstance(result, AgentResult):
            raise TypeError(f"agent {agent.name} returned {type(result).__name__}, not AgentResult")
    except TRANSIENT_ERRORS as exc:
        beat.stop_event.set()
        retry = run.attempts < MAX_ATTEMPTS
        _run_release(run_id=run_id, worker=worker, outcome=AgentRunAttempt.Outcome.RETRIED, when=timezone.now(),
                     status=AgentRun.Status.PENDING if retry else AgentRun.Status.FAILED,
                     error=f"transient: {exc}"[:2000], claimed_by="", finished_at=None if retry else timezone.now())
        raise
    except Exception as exc:
        beat.stop_event.set()
        log.exception("agent %s run %s failed", agent.name, run_id)
        _run_release(run_id=run_id, worker=worker, outcome=AgentRunAttempt.Outcome.FAILED, when=timezone.now(),
                     status=AgentRun.Status.FAILED, finished_at=timezone.now(),
                     error=_failure_text(exc))
        return AgentRun.objects.get(pk=run_id)
    finally:
        beat.stop_event.set()
    with transaction.atomic():
        run = AgentRun.objects.select_for_update().get(pk=run_id)
        if run.status != AgentRun.Status.RUNNING or run.claimed_by != worker:
            log.warning("run %s was taken back from %s while it ran; this attempt's result is dropped",
                        run_id, worker)
            return run
        run.status = AgentRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.summary = result.summary[:300]
        run.details = {**result.details, "elapsed_s": round(time.perf_counter() - started, 3)}
        run.save()
        AgentRunAttempt.objects.filter(run=run, worker=worker, ended_at__isnull=True).update(
            ended_at=run.finished_at, outcome=AgentRunAttempt.Outcome.SUCCEEDED)
        run.kpis.all().delete()
        RunKpi.objects.bulk_create([
            RunKpi(run=run, agent=run.agent, run_date=run.run_date, name=k.name, label=k.label or k.name,
                   value=float(k.value), unit=k.unit, baseline=k.baseline)
            for k in result.kpis
        ])
    log.info("agent %s run %s succeeded: %s", agent.name, run_id, result.summary)
    return run


def _failure_text(exc: Exception) -> str:
    """The error recorded on a failed run: the traceback, led by the reason where it is the worker's memory
    limit. The frames' locals are let go first: what filled the memory may still be held by them."""
    if not isinstance(exc, MemoryError):
        return "".join(traceback.format_exception(exc))[-4000:]
    traceback.clear_frames(exc.__traceback__)
    reason = (f"out of memory: the run needed more than the worker's limit "
              f"(CITY_OPS_WORKER_MEMORY_LIMIT_MB = {settings.CITY_OPS_WORKER_MEMORY_LIMIT_MB})\n")
    return reason + "".join(traceback.format_exception(exc))[-3000:]


def _runs_with_live_worker(runs: list[AgentRun]) -> set[int]:
    """Ids of the runs whose executing process still refreshes its liveness key."""
    keys = {_liveness_key(run_id=r.pk, worker=r.claimed_by): r.pk for r in runs}
    return {keys[k] for k in cache.get_many(list(keys))}


def agent_run_reap(*, dead_after_s: float | None = None, resend_after_s: float | None = None,
                   now: dt.datetime | None = None) -> list[int]:
    """Take back runs whose worker is dead and re-enqueue them (fail those out of attempts); re-send
    pending runs whose message was lost (enqueued long ago, never claimed).

    A running run's worker is dead when both of its signs of life are older than `dead_after_s`: the
    liveness key in Redis and `heartbeat_at` in the database. Either one fresh keeps the run, so a blip
    of one store never reaps a live run, and a live run is never reaped however long it runs."""
    dead_after_s = dead_after_s or settings.CITY_OPS_RUN_DEAD_AFTER_S
    resend_after_s = resend_after_s or settings.CITY_OPS_RUN_STALE_AFTER_S
    now = now or timezone.now()
    reaped: list[int] = []
    silent = list(AgentRun.objects.filter(status=AgentRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=now - timedelta(seconds=dead_after_s)) | Q(heartbeat_at__isnull=True)))
    alive = _runs_with_live_worker(silent)
    for run in silent:
        if run.pk in alive:
            continue
        gave_up = run.attempts >= MAX_ATTEMPTS
        note = (f"worker {run.claimed_by} stopped answering; gave up after {run.attempts} attempts" if gave_up
                else f"worker {run.claimed_by} stopped answering at {run.heartbeat_at}; re-queued")
        # Conditional on our read (same worker, same heartbeat): two reapers re-queue a run once.
        released = _run_release(
            run_id=run.pk, worker=run.claimed_by, outcome=AgentRunAttempt.Outcome.WORKER_LOST, when=now,
            only_if={"heartbeat_at": run.heartbeat_at}, error=note,
            **({"status": AgentRun.Status.FAILED, "finished_at": now} if gave_up
               else {"status": AgentRun.Status.PENDING, "claimed_by": ""}))
        if released and not gave_up:
            audit_record(action="agent_run.reaped", obj=run, actor_label="reaper")
            _enqueue(run)
            reaped.append(run.pk)
    lost = AgentRun.objects.filter(status=AgentRun.Status.PENDING,
                                   enqueued_at__lt=now - timedelta(seconds=resend_after_s))
    for run in lost:
        _enqueue(run)
        reaped.append(run.pk)
    return reaped


def agent_run_cancel(*, run: AgentRun, user=None) -> AgentRun:
    AgentRun.objects.filter(pk=run.pk, status=AgentRun.Status.PENDING).update(
        status=AgentRun.Status.CANCELLED, finished_at=timezone.now())
    audit_record(action="agent_run.cancelled", obj=run, actor=user)
    run.refresh_from_db()
    return run


def event_dispatch(*, event_id: int) -> list[AgentRun]:
    """Create runs for every agent that reacts to the event's kind (once per event and agent)."""
    from city_ops.city.models import CityEvent

    from .registry import agents_reacting_to

    with transaction.atomic():
        event = CityEvent.objects.select_for_update().get(pk=event_id)
        if event.dispatched_at is not None:
            return []
        runs = []
        for agent in agents_reacting_to(event.kind):
            if agent.name == event.source_agent:
                continue
            params = agent.event_params(event=event)
            if params is None:
                continue
            run, _ = agent_run_create(agent=agent.name, trigger=AgentRun.Trigger.EVENT,
                                      reason=f"{event.kind} #{event.pk}", params=params, event=event)
            runs.append(run)
        event.dispatched_at = timezone.now()
        event.save(update_fields=["dispatched_at"])
    return runs
