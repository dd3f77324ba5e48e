"""The agent runtime's writes: create a run (the idempotency key), claim it, execute it, reap stuck ones."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import socket
import threading
import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_today

from .base import RUNTIME_PARAMS, AgentResult, RunContext
from .errors import TRANSIENT_ERRORS
from .models import AgentRun, RunKpi
from .registry import agent_get

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
HEARTBEAT_S = 15


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


def agent_run_claim(*, run_id: int, worker: str) -> bool:
    """Claim a pending run with a conditional UPDATE: of two workers holding the same message, one wins."""
    now = timezone.now()
    return AgentRun.objects.filter(pk=run_id, status=AgentRun.Status.PENDING).update(
        status=AgentRun.Status.RUNNING, claimed_by=worker, started_at=now, heartbeat_at=now,
        attempts=F("attempts") + 1, error="",
    ) == 1


def agent_run_progress(*, run_id: int, done: int, total: int, message: str = "") -> None:
    AgentRun.objects.filter(pk=run_id).update(
        progress_done=done, progress_total=total, progress_message=message[:200], heartbeat_at=timezone.now())


class _Heartbeat(threading.Thread):
    """Touches heartbeat_at while a run executes, so the reaper can tell a long run from a dead worker."""

    def __init__(self, run_id: int):
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.run_id = run_id
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(HEARTBEAT_S):
            try:
                AgentRun.objects.filter(pk=self.run_id, status=AgentRun.Status.RUNNING).update(heartbeat_at=timezone.now())
            except Exception:  # the main thread will see a database problem itself
                log.warning("heartbeat for run %s failed", self.run_id, exc_info=True)
            finally:
                close_old_connections()


def agent_run_execute(*, run_id: int, worker: str | None = None) -> AgentRun | None:
    """Run a claimed run to its end. Idempotent: a run that is not pending (done, or running elsewhere) is
    left alone and None is returned. Transient errors put the run back to pending and re-raise, so the
    Celery task retries it; other errors fail the run with the traceback recorded."""
    worker = worker or f"{socket.gethostname()}:{threading.get_ident()}"
    if not agent_run_claim(run_id=run_id, worker=worker):
        log.info("run %s is not pending; nothing to do", run_id)
        return None
    run = AgentRun.objects.get(pk=run_id)
    agent = agent_get(run.agent)
    beat = _Heartbeat(run_id)
    beat.start()
    started = time.perf_counter()
    try:
        result = agent.run(RunContext(run=run))
        if not isinstance(result, AgentResult):
            raise TypeError(f"agent {agent.name} returned {type(result).__name__}, not AgentResult")
    except TRANSIENT_ERRORS as exc:
        beat.stop_event.set()
        AgentRun.objects.filter(pk=run_id).update(
            status=AgentRun.Status.PENDING if run.attempts < MAX_ATTEMPTS else AgentRun.Status.FAILED,
            error=f"transient: {exc}"[:2000], claimed_by="", finished_at=None)
        raise
    except Exception as exc:
        beat.stop_event.set()
        log.exception("agent %s run %s failed", agent.name, run_id)
        AgentRun.objects.filter(pk=run_id).update(
            status=AgentRun.Status.FAILED, finished_at=timezone.now(),
            error="".join(traceback.format_exception(exc))[-4000:])
        return AgentRun.objects.get(pk=run_id)
    finally:
        beat.stop_event.set()
    with transaction.atomic():
        run = AgentRun.objects.select_for_update().get(pk=run_id)
        run.status = AgentRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.summary = result.summary[:300]
        run.details = {**result.details, "elapsed_s": round(time.perf_counter() - started, 3)}
        run.save()
        run.kpis.all().delete()
        RunKpi.objects.bulk_create([
            RunKpi(run=run, agent=run.agent, run_date=run.run_date, name=k.name, label=k.label or k.name,
                   value=float(k.value), unit=k.unit, baseline=k.baseline)
            for k in result.kpis
        ])
    log.info("agent %s run %s succeeded: %s", agent.name, run_id, result.summary)
    return run


def agent_run_reap(*, stale_after_s: int | None = None, now: dt.datetime | None = None) -> list[int]:
    """Free runs whose worker died (running, heartbeat stale) and re-enqueue them; fail those out of
    attempts. Also re-enqueue pending runs whose message was lost (enqueued long ago, never claimed)."""
    stale_after_s = stale_after_s or settings.CITY_OPS_RUN_STALE_AFTER_S
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s)
    reaped: list[int] = []
    stuck = AgentRun.objects.filter(status=AgentRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
    for run in stuck:
        if run.attempts >= MAX_ATTEMPTS:
            AgentRun.objects.filter(pk=run.pk, status=AgentRun.Status.RUNNING).update(
                status=AgentRun.Status.FAILED, finished_at=now,
                error=f"worker {run.claimed_by} stopped answering; gave up after {run.attempts} attempts")
            continue
        # Conditional: only if nobody touched it since we read it.
        if AgentRun.objects.filter(pk=run.pk, status=AgentRun.Status.RUNNING, heartbeat_at=run.heartbeat_at).update(
                status=AgentRun.Status.PENDING, claimed_by="",
                error=f"worker {run.claimed_by} stopped answering at {run.heartbeat_at}; re-queued"):
            audit_record(action="agent_run.reaped", obj=run, actor_label="reaper")
            _enqueue(run)
            reaped.append(run.pk)
    lost = AgentRun.objects.filter(status=AgentRun.Status.PENDING, enqueued_at__lt=cutoff)
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
