"""Solve an `Instance` with PyVRP and hand back a checked plan.

The objective is the instance's own (distance, or travel time) within the fleet limit, with no fixed cost
per truck: we do not minimise the number of trucks first. The plan is verified by our own checker
(`check.plan_check`); `feasible` in the result is that checker's verdict, not PyVRP's.

A fleet the file does not give (`Instance.fleet_open`, Kim et al.) is our estimate, and an estimate can be
short: where time binds, the best plan at the estimated fleet breaks the shift. Then the solve adds trucks
and searches again from that plan, within the same time limit (`_fleet_grow`). A fixed fleet is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pyvrp import (
    Activity,
    ActivityType,
    IteratedLocalSearch,
    PenaltyManager,
    RandomNumberGenerator,
    Route,
    Solution,
)
from pyvrp.search import LocalSearch, PerturbationManager, compute_neighbours
from pyvrp.solve import SolveParams
from pyvrp.solve import solve as pyvrp_solve
from pyvrp.stop import MaxIterations, MultipleCriteria, StoppingCriterion

from agents.sanitation.vrp.check import PlanRoute, Violation, plan_check, plan_cost, plan_schedule
from agents.sanitation.vrp.instance import Instance, NodeId
from agents.sanitation.vrp.model import PyvrpModel, instance_model


@dataclass
class SolveResult:
    """A solved plan with its cost (published units), our checker's verdict and the reference gap."""

    instance: str
    routes: list[PlanRoute]
    cost: float | int
    feasible: bool
    violations: list[Violation]
    time_limit: float
    seed: int
    runtime_s: float
    best_known: float | None = None
    solver_feasible: bool = False
    skipped: list[NodeId] = field(default_factory=list)
    prizes: int = 0
    objective: str = "distance"
    notes: list[str] = field(default_factory=list)
    fleet_bound: int | None = None
    fleet_allowed: int = 0

    @property
    def vehicles(self) -> int:
        """Trucks used (routes with at least one visit)."""
        return sum(1 for r in self.routes if r.visits)

    @property
    def gap_pct(self) -> float | None:
        """Percentage above the reference value, when there is one."""
        if not self.best_known:
            return None
        return 100.0 * (self.cost - self.best_known) / self.best_known

    def as_dict(self) -> dict:
        """JSON-ready form: routes as flat node-id lists, one per truck used."""
        gap = self.gap_pct
        return {
            "instance": self.instance,
            "cost": self.cost,
            "objective": self.objective,
            "feasible": self.feasible,
            "vehicles": self.vehicles,
            "routes": [list(r.visits) for r in self.routes if r.visits],
            "vehicle_types": [r.vehicle_type for r in self.routes if r.visits],
            "time_limit": self.time_limit,
            "seed": self.seed,
            "runtime_s": round(self.runtime_s, 3),
            "best_known": _whole(self.best_known),
            "gap_pct": None if gap is None else round(gap, 3),
            "solver_feasible": self.solver_feasible,
            "skipped": list(self.skipped),
            "prizes": self.prizes,
            "violations": [v.as_dict() for v in self.violations],
            "notes": list(self.notes),
            "fleet_bound": self.fleet_bound,
            "fleet_allowed": self.fleet_allowed,
        }


def instance_solve(
    *,
    instance: Instance,
    time_limit: float,
    seed: int = 1,
    max_iterations: int | None = None,
    display: bool = False,
    initial: Sequence[PlanRoute] | None = None,
) -> SolveResult:
    """Solve with PyVRP for `time_limit` seconds (or `max_iterations`, whichever ends first: an iteration
    budget makes a seeded run repeatable on a busy machine) and check the best plan found.

    `initial` routes (e.g. the plan of a first pass with other demands) warm-start the search; they need
    not be feasible, PyVRP repairs them. An open fleet may grow within the same budget (module docstring).
    """
    started = time.perf_counter()
    if instance.fleet_open:
        instance, (routes, solver_feasible) = _fleet_grow(
            instance, time_limit, max_iterations, seed, display, initial
        )
    else:
        routes, solver_feasible = _plan_search(instance, time_limit, max_iterations, seed, display, initial)
    violations = plan_check(instance=instance, routes=routes)
    visited = {node for r in routes for node in r.visits}
    skipped = [c.id for c in instance.clients if c.id not in visited]
    prizes = sum(c.prize for c in instance.clients if c.id in visited)
    return SolveResult(
        instance=instance.name,
        routes=routes,
        cost=_rounded(plan_cost(instance=instance, routes=routes), instance.cost_scale),
        feasible=not violations,
        violations=violations,
        time_limit=time_limit,
        seed=seed,
        runtime_s=time.perf_counter() - started,
        best_known=instance.best_known,
        solver_feasible=solver_feasible,
        skipped=skipped,
        notes=list(instance.notes),
        prizes=prizes,
        objective=instance.objective,
        fleet_bound=instance.fleet_bound,
        fleet_allowed=sum(vt.count for vt in instance.vehicle_types),
    )


_SEARCH_MIN_S = 1.0
"""The shortest search `_fleet_grow` starts at a fleet size, unless the whole budget is shorter."""


def _fleet_grow(
    instance: Instance,
    time_limit: float,
    max_iterations: int | None,
    seed: int,
    display: bool,
    initial: Sequence[PlanRoute] | None,
) -> tuple[Instance, tuple[list[PlanRoute], bool]]:
    """Search an open fleet with a third of the budget left; while the best plan breaks a rule, add trucks
    (`_fleet_add`) and search again from that plan with a third of what is left. Once a plan
    holds, the rest of the budget improves it at that fleet size (a third, not half: a failed search is
    budget lost, a successful one is carried on from its plan). A search that cannot be split (under
    three `_SEARCH_MIN_S`, or iterations, left), or a fleet of a truck per client, takes all that is left.
    Returns the instance with the fleet searched last, and its best plan with PyVRP's verdict.

    The checks that follow the last search (the caller's, and ranking two plans) are kept inside the
    budget too, each reckoned as long as the last check here took (seconds at 2,000 stops)."""
    deadline = time.perf_counter() + time_limit
    iterations_left = max_iterations
    check_s = 0.0
    while True:
        left = max(0.0, deadline - time.perf_counter())
        last = (
            left < 3 * _SEARCH_MIN_S
            or (iterations_left is not None and iterations_left < 3)
            or instance.vehicle_types[0].count >= len(instance.clients)
        )
        iterations = iterations_left if last or iterations_left is None else iterations_left // 3
        budget = max(0.0, left - check_s) if last else left / 3
        found = _plan_search(instance, budget, iterations, seed, display, initial)
        if last:
            return instance, found
        iterations_left = None if iterations_left is None else iterations_left - iterations
        checked = time.perf_counter()
        violations = plan_check(instance=instance, routes=found[0])
        check_s = time.perf_counter() - checked
        if not violations:
            left = max(0.0, deadline - time.perf_counter() - 3 * check_s)
            more = _plan_search(instance, left, iterations_left, seed, display, found[0])
            return instance, min(found, more, key=lambda rs: _plan_key(instance, rs[0]))
        instance, initial = _fleet_add(instance, violations), found[0]


def _fleet_add(instance: Instance, violations: Sequence[Violation]) -> Instance:
    """The instance with a truck more of the first type per two routes that break a rule (at least one,
    at most a truck per client), and a note saying so. (A truck per broken route doubled the fleet of the
    large Kim instances, where every route of a short fleet runs late; the plans then used nearly all.)"""
    vt = instance.vehicle_types[0]
    broken = len({v.route for v in violations if v.route is not None})
    count = min(len(instance.clients), vt.count + max(1, math.ceil(broken / 2)))
    return replace(
        instance,
        vehicle_types=[replace(vt, count=count), *instance.vehicle_types[1:]],
        notes=[*instance.notes, f"the best plan with {vt.count} trucks breaks a rule; allowing {count}"],
    )


def _plan_search(
    instance: Instance,
    time_limit: float,
    max_iterations: int | None,
    seed: int,
    display: bool,
    initial: Sequence[PlanRoute] | None,
) -> tuple[list[PlanRoute], bool]:
    """The best plan at the instance's fleet and whether PyVRP deems it feasible.

    Crews that lunch apart (several lunch groups, model.py) take two solves, half the budget each: one
    clock that hides every group's break, where all of PyVRP's moves apply but a crew idles through the
    other groups' breaks; then each group on its own clock from that plan, which gives that time back
    but moves a bin between groups only by swapping its copies. The better plan is kept."""
    started = time.perf_counter()
    model = instance_model(instance=instance)
    if len(model.groups) == 1:
        return _model_solve(instance, model, started + time_limit, max_iterations, seed, display, initial)
    iters = None if max_iterations is None else max(1, max_iterations // 2)
    merged = instance_model(instance=instance, merged=True)
    first = _model_solve(instance, merged, started + time_limit / 2, iters, seed, display, initial)
    second = _model_solve(instance, model, started + time_limit, iters, seed, display, first[0] or initial)
    return min(first, second, key=lambda rs: _plan_key(instance, rs[0]))


def _model_solve(
    instance: Instance,
    model: PyvrpModel,
    deadline: float,
    max_iterations: int | None,
    seed: int,
    display: bool,
    initial: Sequence[PlanRoute] | None,
) -> tuple[list[PlanRoute], bool]:
    """One PyVRP run on one model until `deadline` (a `time.perf_counter()` time): the best plan's routes
    and whether PyVRP deems it feasible."""
    stop: StoppingCriterion = _Deadline(deadline)
    if max_iterations is not None:
        stop = MultipleCriteria([stop, MaxIterations(max_iterations)])
    start = solution_encode(instance=instance, model=model, routes=initial) if initial else None
    result = _pyvrp_run(model, stop=stop, seed=seed, display=display, initial=start)
    return solution_decode(instance=instance, model=model, solution=result.best), result.best.is_feasible()


@dataclass(frozen=True)
class _Deadline:
    """A PyVRP stopping criterion at a clock time. PyVRP's `MaxRuntime` starts its clock at its first
    check, after the first solution is built (an exhaustive local search from a random one: 20 s for
    2,100 stops on this busy machine), which then came on top of the caller's time limit."""

    at: float

    def __call__(self, best_cost: float) -> bool:
        return time.perf_counter() > self.at


def _plan_key(instance: Instance, routes: Sequence[PlanRoute]) -> tuple[int, float]:
    """Rank plans of one instance: fewer broken rules, then what the solver minimises, recomputed
    (objective legs, fixed cost per truck, priced time out, less the prizes of the clients visited)."""
    used = [r for r in routes if r.visits]
    total = plan_cost(instance=instance, routes=used) * instance.cost_scale
    total += sum(instance.vehicle_types[r.vehicle_type].fixed_cost for r in used)
    total += sum(
        instance.vehicle_types[used[s.route].vehicle_type].unit_duration_cost * (s.back - s.depart)
        for s in plan_schedule(instance=instance, routes=used, late_start=True)
    )
    visited = {v for r in used for v in r.visits}
    total -= sum(c.prize for c in instance.clients if c.id in visited)
    return len(plan_check(instance=instance, routes=used)), total


def solution_decode(*, instance: Instance, model: PyvrpModel, solution: Solution) -> list[PlanRoute]:
    """PyVRP routes -> `PlanRoute`s in node ids, with the final unload written in where the composite end
    edge implied it, and trailing empty reloads at the home depot dropped."""
    kinds = instance.node_kinds()
    routes = []
    for route in solution.routes():
        t = route.vehicle_type()
        vt = instance.vehicle_types[t]
        visits: list[NodeId] = []
        last_client: int | None = None
        for activity in list(route)[1:-1]:
            if activity.is_client():
                visits.append(instance.clients[model.client_of(activity.idx)].id)
                last_client = activity.idx  # the copy: its end edge is the one the route drove
            elif activity.is_depot():
                visits.append(model.depot_nodes[activity.idx])
                last_client = None
        if not any(kinds[v][0] == "client" for v in visits):
            continue
        if vt.unload_sites and last_client is not None:
            visits.append(instance.disposal_sites[model.final_site[(t, last_client)]].id)
        home = instance.depots[vt.end].id
        while not vt.unload_sites and visits and visits[-1] == home:
            visits.pop()
        routes.append(PlanRoute(vehicle_type=t, visits=visits))
    return routes


def solution_encode(*, instance: Instance, model: PyvrpModel, routes: Sequence[PlanRoute]) -> Solution:
    """The inverse of `solution_decode`: our routes as a PyVRP solution (a final unload that the composite
    end edge implies is left out; visits the instance does not know are dropped)."""
    kinds = instance.node_kinds()
    n_dep = len(instance.depots)
    pyvrp_routes = []
    for route in routes:
        t = route.vehicle_type
        vt = instance.vehicle_types[t]
        visits = [v for v in route.visits if v in kinds]
        if vt.unload_sites and visits and kinds[visits[-1]][0] == "disposal":
            visits = visits[:-1]
        if not any(kinds[v][0] == "client" for v in visits):
            continue
        acts = []  # PyVRP adds the start and end depots of the vehicle type itself
        for v in visits:
            kind, pos = kinds[v]
            if kind == "client":  # the copy on this truck's lunch clock (model.py)
                acts.append(Activity(ActivityType.CLIENT, model.client_index(vehicle_type=t, client=pos)))
            else:
                pos = pos if kind == "depot" else n_dep + pos
                acts.append(Activity(ActivityType.DEPOT, model.depot_index(vehicle_type=t, pos=pos)))
        pyvrp_routes.append(Route(model.data, acts, t))
    return Solution(model.data, pyvrp_routes)


def _pyvrp_run(
    model: PyvrpModel, *, stop: StoppingCriterion, seed: int, display: bool, initial: Solution | None = None
):
    """PyVRP's own `solve`, except that granular neighbours come from the plain objective matrix when the
    distance dimension also carries a daily counter (see model.py)."""
    if model.neighbour_data is None:
        return pyvrp_solve(
            model.data, stop, seed=seed, collect_stats=False, display=display, initial_solution=initial
        )
    params = SolveParams()
    data = model.data
    rng = RandomNumberGenerator(seed=seed)
    neighbours = compute_neighbours(model.neighbour_data, params.neighbourhood)
    ls = LocalSearch(data, rng, neighbours, PerturbationManager(params.perturbation))
    for op in params.operators:
        if op.supports(data):
            ls.add_operator(op(data))
    pm = PenaltyManager(params.penalty.midpoint_penalties(data), params.penalty)
    init = initial or ls(Solution.make_random(data, rng), pm.max_cost_evaluator(), exhaustive=True)
    algo = IteratedLocalSearch(data, pm, ls, init, params.ils)
    return algo.run(stop, False, display, params.display_interval)


def _rounded(cost: float, scale: int) -> float | int:
    """Whole numbers stay whole (784, not 784.0); tenths keep one decimal (827.3)."""
    digits = math.ceil(math.log10(scale)) if scale > 1 else 0
    return round(cost, digits) if digits else round(cost)


def _whole(value: float | None) -> float | int | None:
    """784.0 -> 784 for JSON; 827.3 stays as it is."""
    return int(value) if value is not None and float(value).is_integer() else value
