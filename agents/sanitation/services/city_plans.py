"""The whole city's day planned district by district, in parallel on the planning queue.

One routing problem for a city of 20,000 bins is far past what PyVRP solves in minutes (and its travel
matrix alone would be 3 GB), while a district of 2,000 bins plans in about two. So `city_plan_start`
shares the trucks in service among the districts in proportion to their bins, stores one `DistrictPlan`
per district and, once that has committed, sends one `sanitation.plan_district` task per district to the
planning queue: as many planning workers as there are plan as many districts at once. Each task claims
its part with a conditional UPDATE (a redelivered message finds it claimed and does nothing), plans the
district as the nightly plan plans the city (`plan_selectors.district_choices`, `domain.planner.day_planned`)
and stores its figures; the part that finishes last sums them into the `CityPlan` (`city_plan_collect`,
under a row lock, so two parts finishing together sum once)."""

from __future__ import annotations

import datetime as dt
import logging
import resource
import time

from django.db import transaction
from django.utils import timezone

from agents.runtime.errors import TRANSIENT_ERRORS
from agents.runtime.services import worker_identity
from city_ops.city.models import District
from city_ops.core.services import audit_record
from city_ops.queues import Queue

from .. import plan_selectors as ps
from ..domain.planner import day_planned, summary_kpis
from ..domain.routing import routes_summarise
from ..models import Bin, CityPlan, DistrictPlan, Truck
from .plans import PlanOptions

log = logging.getLogger(__name__)
SUMMED = ("km", "hours", "bins_visited", "trucks_used", "unloads", "mandatory", "unserved_mandatory",
          "optional_offered", "optional_visited", "litres", "cpu_s")


def trucks_shared(*, bins: dict[int, int], trucks: list[int]) -> dict[int, list[int]]:
    """Share `trucks` (ids) among districts (id -> bins) in proportion to their bins, by largest
    remainder, every district with bins getting at least one while trucks last; in id order."""
    districts = sorted((d for d, n in bins.items() if n > 0), key=lambda d: (-bins[d], d))
    total = sum(bins[d] for d in districts)
    if not districts or not trucks:
        return {d: [] for d in bins}
    quota = {d: len(trucks) * bins[d] / total for d in districts}
    count = {d: max(1, int(quota[d])) for d in districts}
    while sum(count.values()) > len(trucks):  # more districts than trucks: the smallest go without
        smallest = min((d for d in districts if count[d] > 0), key=lambda d: (quota[d], -d))
        count[smallest] -= 1
    for d in sorted(districts, key=lambda d: (int(quota[d]) - quota[d], d))[: len(trucks) - sum(count.values())]:
        count[d] += 1
    out, given = {d: [] for d in bins}, 0
    for d in districts:
        out[d] = trucks[given:given + count[d]]
        given += count[d]
    return out


@transaction.atomic
def city_plan_start(*, date: dt.date, user=None, time_limit: float, seed: int = 1, max_bins: int | None = None,
                    assume_level: float | None = None) -> CityPlan:
    """Store a city plan and its districts' parts (the trucks in service shared among the districts with
    active bins) and send each part to the planning queue once this transaction commits."""
    bins = {d.pk: Bin.objects.filter(active=True, geom__within=d.geom).count() for d in District.objects.all()}
    shares = trucks_shared(bins=bins, trucks=list(Truck.objects.filter(in_service=True)
                                                  .order_by("pk").values_list("pk", flat=True)))
    plan = CityPlan.objects.create(date=date, created_by=user if getattr(user, "is_authenticated", False) else None,
                                   options={"time_limit": time_limit, "seed": seed, "max_bins": max_bins,
                                            "assume_level": assume_level})
    parts = DistrictPlan.objects.bulk_create([
        DistrictPlan(city_plan=plan, district_id=d, truck_ids=shares[d]) for d in sorted(bins) if bins[d] > 0
    ])
    audit_record(action="sanitation.city_plan_started", obj=plan, actor=user, actor_label="agent:sanitation",
                 changes={"date": str(date), "districts": len(parts)})
    transaction.on_commit(lambda: _send([p.pk for p in parts]))
    return plan


def _send(part_ids: list[int]) -> None:
    from ..tasks import plan_district

    for pk in part_ids:
        plan_district.apply_async(args=[pk], queue=Queue.PLANNING.value)


def district_plan_claim(*, part_id: int, worker: str) -> DistrictPlan | None:
    """Claim a pending part (of two workers holding the same message, one wins); None when not pending."""
    claimed = DistrictPlan.objects.filter(pk=part_id, status=DistrictPlan.Status.PENDING).update(
        status=DistrictPlan.Status.RUNNING, claimed_by=worker, started_at=timezone.now())
    return DistrictPlan.objects.select_related("city_plan", "district").get(pk=part_id) if claimed else None


def district_plan_execute(*, part_id: int, worker: str | None = None) -> DistrictPlan | None:
    """Plan a claimed district and store its figures (or why it failed), then sum the city plan if this
    was its last part. A transient error (database, broker) puts the part back and re-raises for the
    task's retry."""
    worker = worker or worker_identity()
    part = district_plan_claim(part_id=part_id, worker=worker)
    if part is None:
        log.info("district plan %s is not pending; nothing to do", part_id)
        return None
    try:
        kpis, routes = _district_planned(part)
    except TRANSIENT_ERRORS:
        DistrictPlan.objects.filter(pk=part_id, claimed_by=worker).update(
            status=DistrictPlan.Status.PENDING, claimed_by="", started_at=None)
        raise
    except Exception as exc:
        log.exception("district plan %s failed", part_id)
        DistrictPlan.objects.filter(pk=part_id).update(status=DistrictPlan.Status.FAILED, error=repr(exc)[:2000],
                                                       finished_at=timezone.now())
    else:
        DistrictPlan.objects.filter(pk=part_id).update(status=DistrictPlan.Status.DONE, kpis=kpis, routes=routes,
                                                       finished_at=timezone.now())
    city_plan_collect(city_plan_id=part.city_plan_id)
    return DistrictPlan.objects.get(pk=part_id)


def _district_planned(part: DistrictPlan) -> tuple[dict, list[dict]]:
    """The district's day planned as the nightly plan plans the city, with its build and solve times."""
    started, cpu = time.perf_counter(), time.process_time()
    options, date = part.city_plan.options, part.city_plan.date
    solver = PlanOptions(time_limit=float(options["time_limit"]), seed=int(options.get("seed") or 1))
    trucks = list(Truck.objects.filter(pk__in=part.truck_ids).order_by("pk"))
    choices, notes = ps.district_choices(date=date, district=part.district, trucks=trucks, policy=solver.policy,
                                         max_bins=options.get("max_bins"), assume_level=options.get("assume_level"))
    if not trucks or not choices:
        return {"bins_offered": len(choices), "notes": (notes or ["no trucks or no bins"])[:20]}, []
    problem = ps.problem_build(date=date, trucks=trucks, choices=choices, fixed_cost=solver.fixed_cost)
    build_s = time.perf_counter() - started
    states = ps.fill_states([int(str(c.id).split(":")[1]) for c in choices])
    problem, solved, more = day_planned(problem=problem, states=states, policy=solver.policy, locked=[],
                                        **solver.solver())
    kpis = {**summary_kpis(problem, solved), "feasible": not solved.violations, "trucks_given": len(trucks),
            "bins_offered": len(choices), "build_s": round(build_s, 1), "solve_s": round(solved.solve_s, 1),
            "wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "notes": (notes + more + solved.notes)[:20]}
    routes = [{"truck": s.truck, "bins": sum(1 for v in s.visits if v.startswith("bin:")),
               "km": round(s.distance_m / 1000, 2)}
              for s in routes_summarise(instance=problem.instance, routes=solved.routes)]
    return kpis, routes


@transaction.atomic
def city_plan_collect(*, city_plan_id: int) -> CityPlan:
    """Sum the districts' figures into the city plan once none is pending or running (under the plan's row
    lock: of two last parts finishing together, the second finds it done)."""
    plan = CityPlan.objects.select_for_update().get(pk=city_plan_id)
    parts = list(plan.districts.select_related("district").order_by("district__code"))
    open_ = (DistrictPlan.Status.PENDING, DistrictPlan.Status.RUNNING)
    if plan.status == CityPlan.Status.DONE or any(p.status in open_ for p in parts):
        return plan
    done = [p for p in parts if p.status == DistrictPlan.Status.DONE]
    plan.kpis = {
        **{k: round(sum(p.kpis.get(k, 0) for p in done), 3) for k in SUMMED},
        "districts": len(parts),
        "districts_failed": [p.district.code for p in parts if p.status == DistrictPlan.Status.FAILED],
        "feasible": bool(done) and len(done) == len(parts) and all(p.kpis.get("feasible", True) for p in done),
        "slowest_district_s": max((p.kpis.get("wall_s", 0) for p in done), default=0),
        "wall_s": round((timezone.now() - plan.created_at).total_seconds(), 1),
    }
    plan.status, plan.finished_at = CityPlan.Status.DONE, timezone.now()
    plan.save(update_fields=["kpis", "status", "finished_at"])
    audit_record(action="sanitation.city_plan_done", obj=plan, actor_label="agent:sanitation",
                 changes={"km": plan.kpis["km"], "trucks_used": plan.kpis["trucks_used"]})
    return plan
