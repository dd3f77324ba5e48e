"""A seeded replay of one loop route, with and without headway-based holding, to show what holding buys.

The model is the textbook bunching mechanism: passengers arrive at every stop at a steady rate, a bus's
dwell grows with the passengers it finds (dead time + boarding time each), so a late bus finds more
people, dwells longer and falls further behind while its follower catches up. Link run times carry
lognormal noise. With holding on, a bus leaving a control stop is held by `realtime.hold_seconds` (the
same rule the live advice uses): half the difference between its follower's and its own headway.

Deterministic: each bus draws its run times and passenger counts from its own stream seeded by
(seed, bus), so the runs with and without holding see comparable randomness.
"""
from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .realtime import headway_grade, hold_seconds

__all__ = ["HoldingComparison", "SimulationConfig", "SimulationRun", "holding_compare", "replay_config",
           "route_simulate"]


@dataclass(frozen=True)
class SimulationConfig:
    """A loop route. The link run time is chosen so that one lap takes buses x headway on average."""

    buses: int = 10
    stops: int = 30
    headway_s: float = 480.0
    arrivals_per_min: float = 0.8  # passengers per minute per stop
    board_s: float = 3.0  # seconds per boarding passenger
    dead_time_s: float = 6.0  # doors, pulling in and out
    run_cv: float = 0.12  # coefficient of variation of a link's run time
    duration_s: float = 3 * 3600.0
    warmup_s: float = 1800.0  # headways before this are not counted
    control_every: int = 3  # holding at every n-th stop (the timing points)
    max_hold_s: float = 120.0

    @property
    def link_s(self) -> float:
        """Mean run time of one link, net of the expected dwell at a stop."""
        dwell = self.dead_time_s + self.board_s * self.arrivals_per_min / 60.0 * self.headway_s
        link = (self.buses * self.headway_s) / self.stops - dwell
        if link <= 0:
            raise ValueError("dwell alone exceeds the lap time: fewer passengers, more buses or a longer headway")
        return link


@dataclass
class SimulationRun:
    """Outcome of one run: departure headways at every stop after warm-up, pooled."""

    holding: bool
    headways: int
    mean_headway_s: float
    cv: float
    grade: str | None
    ewt_s: float
    holds: int
    held_share: float
    median_hold_s: float
    mean_lap_s: float
    hold_log: list[tuple[float, int, int, float]] = field(default_factory=list, repr=False)


@dataclass
class HoldingComparison:
    """Without vs with holding, same route and seed."""

    seed: int
    config: SimulationConfig
    without: SimulationRun
    with_holding: SimulationRun

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        def run(r: SimulationRun) -> dict:
            out = asdict(r)
            out.pop("hold_log")
            return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}

        return {"seed": self.seed, "config": asdict(self.config), "without": run(self.without),
                "with_holding": run(self.with_holding)}


def route_simulate(*, config: SimulationConfig = SimulationConfig(), seed: int = 0, holding: bool = False) -> SimulationRun:
    """Run the loop route for `config.duration_s` and measure headway regularity."""
    c = config
    n, s = c.buses, c.stops
    link = c.link_s
    rate = c.arrivals_per_min / 60.0
    sigma = np.sqrt(np.log(1.0 + c.run_cv**2))
    streams = [np.random.default_rng([seed, b]) for b in range(n)]
    per_stop = link + c.dead_time_s + c.board_s * rate * c.headway_s  # mean time a bus needs per stop

    # Buses start evenly spread round the loop at t=0, bus 0 in front; stops behind each bus were
    # served a matching time ago, so the first passengers waiting are the steady-state number.
    spacing = s / n
    progress = [round((n - 1 - b) * spacing) for b in range(n)]  # stops completed, bus 0 furthest
    last_departure = np.full(s, np.nan)
    for stop in range(s):
        behind = min((p - stop) % s for p in progress)
        last_departure[stop] = -behind * per_stop
    last_time = [0.0] * n  # when each bus last left a stop (or started)
    events = [(link * float(np.exp(streams[b].normal(-sigma**2 / 2, sigma))), b) for b in range(n)]
    heapq.heapify(events)
    headways: list[float] = []
    holds: list[float] = []
    hold_log = []
    laps: list[float] = []
    lap_start = [0.0] * n
    while events:
        t, b = heapq.heappop(events)
        if t > c.duration_s:
            break
        stop = (progress[b]) % s
        rng = streams[b]
        waiting = rng.poisson(rate * max(t - last_departure[stop], 0.0))
        depart = t + c.dead_time_s + c.board_s * waiting
        hold = 0.0
        if holding and stop % c.control_every == 0:
            # Forward headway: since the last bus left this stop. Backward: when the bus behind should get
            # here, from where it last was and the mean time per stop.
            forward = depart - last_departure[stop]
            rank = progress[b]
            # The bus behind is the one fewest stops back, counting round the loop.
            behind = [((rank - progress[o]) % s, o) for o in range(n) if o != b]
            if behind:
                gap_stops, follower = min(behind)
                eta = last_time[follower] + (gap_stops + 1) * per_stop
                hold = hold_seconds(forward_s=forward, backward_s=eta - depart, max_hold_s=c.max_hold_s)
            if t >= c.warmup_s:
                holds.append(hold)
                if hold > 0:
                    hold_log.append((t, b, stop, hold))
        depart += hold
        if t >= c.warmup_s and np.isfinite(last_departure[stop]):
            headways.append(depart - last_departure[stop])
        last_departure[stop] = max(last_departure[stop], depart)
        last_time[b] = depart
        progress[b] += 1
        if progress[b] % s == 0:
            if progress[b] > s:  # the first lap started mid-loop: not a whole lap
                laps.append(depart - lap_start[b])
            lap_start[b] = depart
        heapq.heappush(events, (depart + link * float(np.exp(rng.normal(-sigma**2 / 2, sigma))), b))

    h = np.asarray(headways)
    mean = float(h.mean()) if len(h) else float("nan")
    cv = float(h.std() / mean) if len(h) else float("nan")
    nonzero = [x for x in holds if x > 0]
    return SimulationRun(
        holding=holding,
        headways=len(h),
        mean_headway_s=mean,
        cv=cv,
        grade=headway_grade(cv),
        # Excess wait against the scheduled headway: E[w] = E[h](1 + cv^2)/2 minus H/2.
        ewt_s=mean * (1 + cv**2) / 2 - c.headway_s / 2,
        holds=len(nonzero),
        held_share=len(nonzero) / len(holds) if holds else 0.0,
        median_hold_s=float(np.median(nonzero)) if nonzero else 0.0,
        mean_lap_s=float(np.mean(laps)) if laps else float("nan"),
        hold_log=hold_log,
    )


def holding_compare(*, config: SimulationConfig = SimulationConfig(), seed: int = 0) -> HoldingComparison:
    """The same route and seed run twice, without and with headway-based holding."""
    return HoldingComparison(
        seed=seed,
        config=config,
        without=route_simulate(config=config, seed=seed, holding=False),
        with_holding=route_simulate(config=config, seed=seed, holding=True),
    )


def replay_config(*, buses: int, stops: int, headway_s: float, span_s: float,
                  base: SimulationConfig = SimulationConfig()) -> SimulationConfig:
    """The loop route a day's positions describe, for `holding_compare`: the buses that ran it and its stops
    (a route's two directions make one loop: a bus comes back), the timetable's headway, run for the time
    the buses reported (at least one lap) after `base`'s warm-up; passengers and run times as in `base`.
    ValueError when the dwell alone exceeds the lap (too many stops for the buses and headway)."""
    if buses < 2:
        raise ValueError(f"{buses} bus on the route: headways need two")
    config = replace(base, buses=buses, stops=stops, headway_s=headway_s,
                     duration_s=base.warmup_s + max(span_s, buses * headway_s))
    config.link_s  # noqa: B018 (raises ValueError for a lap shorter than its dwell)
    return config
