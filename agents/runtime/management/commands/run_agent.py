"""manage.py run_agent NAME [--date D] [--sync] [--json]: run one agent (or --all) from the shell."""
import json
import time

from django.core.management.base import BaseCommand, CommandError

from agents.runtime.models import AgentRun
from agents.runtime.registry import UnknownAgentError, agent_names
from agents.runtime.services import RunParamsError, agent_run_execute, agent_run_request, run_params_parse
from city_ops.core.timeutil import date_parse

FINAL = (AgentRun.Status.SUCCEEDED, AgentRun.Status.FAILED, AgentRun.Status.CANCELLED)


def _as_dict(run: AgentRun) -> dict:
    return {"id": run.pk, "agent": run.agent, "run_date": str(run.run_date), "trigger": run.trigger,
            "status": run.status, "summary": run.summary, "error": run.error,
            "kpis": {k.name: k.value for k in run.kpis.all()}}


class Command(BaseCommand):
    help = "Run an agent: through Celery (default; --wait to wait for it) or in this process (--sync)."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="agent name: " + ", ".join(agent_names()))
        parser.add_argument("--all", action="store_true", help="every registered agent")
        parser.add_argument("--date", help="YYYY-MM-DD in the city's time zone (default: today)")
        parser.add_argument("--sync", action="store_true", help="run in-process without a worker")
        parser.add_argument("--wait", action="store_true", help="wait for the worker to finish the run(s)")
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to --wait at most")
        parser.add_argument("--reason", default="")
        parser.add_argument("--trigger", default=AgentRun.Trigger.MANUAL, choices=AgentRun.Trigger.values)
        parser.add_argument("--param", action="append", default=[],
                            help="KEY=VALUE, repeatable; each agent's parameters are in docs/operations.md")
        parser.add_argument("--json", action="store_true", help="print the run(s) as JSON on stdout")

    def handle(self, *args, **opts):
        if not opts["name"] and not opts["all"]:
            raise CommandError("name an agent (" + ", ".join(agent_names()) + ") or pass --all")
        try:
            day = date_parse(opts["date"]) if opts["date"] else None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        names = agent_names() if opts["all"] else [opts["name"]]
        runs = []
        for name in names:
            try:
                run, created = agent_run_request(agent=name, run_date=day, trigger=opts["trigger"],
                                                 reason=opts["reason"] or "run_agent command",
                                                 params=run_params_parse(opts["param"]), enqueue=not opts["sync"])
            except (UnknownAgentError, RunParamsError) as exc:
                raise CommandError(f"{name}: {exc}" if isinstance(exc, RunParamsError) else str(exc)) from None
            runs.append(run)
            if opts["sync"]:
                self.stderr.write(f"running {run.agent} for {run.run_date} in-process (run #{run.pk}) ...")
                agent_run_execute(run_id=run.pk)  # this shell is the worker (host:pid)
            else:
                self.stderr.write(f"run #{run.pk} of {run.agent} for {run.run_date} " +
                                  ("enqueued" if created else f"already exists ({run.status})"))
        if opts["wait"] and not opts["sync"]:
            self._wait([r.pk for r in runs], opts["timeout"])
        for run in runs:
            run.refresh_from_db()
        if opts["json"]:
            data = [_as_dict(r) for r in runs]
            self.stdout.write(json.dumps(data if opts["all"] else data[0]))
        else:
            for run in runs:
                self.stdout.write(f"#{run.pk} {run.agent} {run.run_date}: {run.status} {run.summary}")
        failed = [r for r in runs if r.status == AgentRun.Status.FAILED]
        if failed:
            last = lambda r: r.error.strip().splitlines()[-1] if r.error else ""  # noqa: E731
            raise CommandError("; ".join(f"run #{r.pk} ({r.agent}) failed: {last(r)}" for r in failed))

    def _wait(self, ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        shown: dict[int, str] = {}
        while time.monotonic() < deadline:
            runs = list(AgentRun.objects.filter(pk__in=ids))
            for r in runs:
                line = f"{r.status} {r.progress_done}/{r.progress_total} {r.progress_message}".strip()
                if shown.get(r.pk) != line:
                    shown[r.pk] = line
                    self.stderr.write(f"  {r.agent} #{r.pk}: {line}")
            if all(r.status in FINAL for r in runs):
                return
            time.sleep(0.5)
        raise CommandError(f"runs {ids} did not finish within {timeout:.0f} s: is a worker running? (make worker)")
