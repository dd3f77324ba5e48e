"""A stochastic fill simulator: the city's bins filling day by day, sensor readings, crews emptying them.

Each bin has a mean fill rate per weekday; every day's actual rate is that times a log-normal factor
(mean 1) drawn from (seed, day) alone, so two policies simulated with the same seed face exactly the same
waste and differ only in when they empty the bins. Within a day a bin fills evenly. A bin's level may
pass 1.0: the excess is the waste left beside an overflowing bin, and all of it is collected at the
next visit. Sensors report every `reading_every_h` hours with noise and saturate at a full bin; a crew
estimates the level it sees to the nearest 10%.

Used by the agent's demo data (a few weeks of history) and by bench/sanitation.py (28 days of two
policies side by side)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .counterfactual import MAX_LEVEL, day_levels
from .fill import FillObservation

# Bin kinds of a European city: (name, capacity litres, mean rate per day, weekday factors Mon..Sun,
# service seconds, share of the fleet). Residential bins fill more at weekends, shops' less.
BIN_KINDS = (
    ("residential-240", 240, 0.20, (1.1, 0.9, 0.9, 0.9, 1.0, 1.2, 1.3), 45, 0.35),
    ("residential-660", 660, 0.22, (1.1, 0.9, 0.9, 0.9, 1.0, 1.2, 1.3), 75, 0.30),
    ("commercial-1100", 1100, 0.30, (1.0, 1.0, 1.1, 1.1, 1.3, 0.9, 0.4), 90, 0.20),
    ("deep-3000", 3000, 0.14, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), 240, 0.15),
)


@dataclass(frozen=True)
class SimBin:
    """A simulated bin: its volume, its mean rate per weekday (fraction of the bin per day), the spread of
    the daily factor (log-normal sigma) and whether it has a fill sensor."""

    capacity_l: int
    rates: tuple[float, ...]
    noise: float = 0.35
    sensor: bool = False
    kind: str = ""
    service_s: int = 60


def sim_bins_draw(*, rng: np.random.Generator, n: int, sensor_share: float = 0.4) -> list[SimBin]:
    """`n` bins of the kinds above, each with its own level of use (a factor 0.45-1.8 on its kind's rate)."""
    shares = np.array([k[5] for k in BIN_KINDS])
    kinds = rng.choice(len(BIN_KINDS), size=n, p=shares / shares.sum())
    out = []
    for k in kinds:
        name, cap, base, factors, service, _ = BIN_KINDS[int(k)]
        use = float(rng.lognormal(0.0, 0.35))
        use = min(max(use, 0.45), 1.8)
        rates = tuple(round(base * use * f, 4) for f in factors)
        out.append(SimBin(capacity_l=cap, rates=rates, noise=float(rng.uniform(0.2, 0.45)),
                          sensor=bool(rng.random() < sensor_share), kind=name, service_s=service))
    return out


@dataclass
class DayOutcome:
    """What one simulated day produced: sensor readings and crew pickups (bin index, local-days time,
    level), which bins overflowed at some point of the day, and the litres each collection removed."""

    readings: list[tuple[int, float, float]] = field(default_factory=list)
    pickups: list[tuple[int, float, float]] = field(default_factory=list)
    overflowed: np.ndarray | None = None
    collected_l: dict[int, float] = field(default_factory=dict)

    def observations(self, *, n: int, sensor_sd: float = 0.03, crew_sd: float = 0.08) -> list[list[FillObservation]]:
        """What the fill model learns from the day, per bin (`n` of them): the readings, and the crews'
        pickups as levels seen before emptying."""
        out: list[list[FillObservation]] = [[] for _ in range(n)]
        for i, at, level in self.readings:
            out[i].append(FillObservation(at=at, level=level, sd=sensor_sd))
        for i, at, level in self.pickups:
            out[i].append(FillObservation(at=at, level=level, emptied=True, sd=crew_sd, source="crew"))
        return out


class FillSimulator:
    """The true state of every bin, advanced one local day at a time."""

    def __init__(self, *, bins: Sequence[SimBin], seed: int, initial_levels: np.ndarray | None = None,
                 reading_every_h: int = 6, sensor_sd: float = 0.03):
        self.bins = list(bins)
        self.seed = seed
        self.rates = np.array([b.rates for b in self.bins], dtype=float).reshape(-1, 7)
        self.noise = np.array([b.noise for b in self.bins], dtype=float)
        self.sensor = np.array([b.sensor for b in self.bins], dtype=bool)
        self.capacity = np.array([b.capacity_l for b in self.bins], dtype=float)
        if initial_levels is None:
            initial_levels = np.random.default_rng([seed, 0]).uniform(0.0, 0.6, len(self.bins))
        self.levels = np.asarray(initial_levels, dtype=float).copy()
        self.reading_every_h = reading_every_h
        self.sensor_sd = sensor_sd

    def day_rates(self, day: int) -> np.ndarray:
        """Every bin's actual rate on local day `day` (an ordinal): the same for a seed whatever happens."""
        rng = np.random.default_rng([self.seed, day, 1])
        sigma = self.noise
        factor = rng.lognormal(-(sigma**2) / 2, sigma)
        weekday = (day - 1) % 7
        return self.rates[:, weekday] * factor

    def day_run(self, *, day: int, emptyings: Mapping[int, float] | None = None) -> DayOutcome:
        """Advance all bins through local day `day`; `emptyings` maps bin index -> time (local days) a crew
        empties it. Returns the day's readings, pickups, overflows and collected litres."""
        emptyings = dict(emptyings or {})
        rate = self.day_rates(day)
        start = self.levels.copy()
        levels = day_levels(start=start, growth=rate, visits=emptyings, day=day)
        out = DayOutcome(overflowed=levels.overflowed)
        rng = np.random.default_rng([self.seed, day, 2])
        for i, t in emptyings.items():
            level = min(levels.at_visit[i], MAX_LEVEL)
            seen = round(level + float(rng.normal(0, 0.04)), 1)
            out.pickups.append((i, day + min(max(t - day, 0.0), 1.0), max(0.0, seen)))
            out.collected_l[i] = level * self.capacity[i]
        # Sensor readings at fixed hours (after the day's collections where those came earlier).
        hours = range(self.reading_every_h, 25, self.reading_every_h)
        idx = np.flatnonzero(self.sensor)
        noise = rng.normal(0, self.sensor_sd, size=(len(idx), len(hours)))
        for col, h in enumerate(hours):
            frac = h / 24.0
            level = start[idx] + rate[idx] * frac
            for row, i in enumerate(idx):
                t = emptyings.get(int(i))
                value = level[row]
                if t is not None and t - day <= frac:
                    value = rate[i] * (frac - (t - day))
                reading = min(max(value + noise[row, col], 0.0), 1.0)
                out.readings.append((int(i), day + frac - 1e-6, round(float(reading), 3)))
        self.levels = levels.end
        return out
