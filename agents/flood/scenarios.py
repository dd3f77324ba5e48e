"""Drill scenarios bundled with the flood agent: readings files a dispatcher can replay from the flood panel
without uploading one. They are made for the demo city's sensors (fixtures/flood_demo.py); on a city
without those sensors a drill of them is refused with the reason (no reading names a sensor of the city)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """A bundled drill: its key in forms, its title, what happens in it, and how its file is made."""

    key: str
    title: str
    description: str
    build: Callable[[], bytes]


def _demo_storm() -> bytes:
    from fixtures.flood_demo import storm_csv

    # a fixed day: a drill's clock is the readings' own time, and the same scenario gives the same log
    return storm_csv(start=dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)).encode()


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(
            "demo-storm",
            "Summer storm over the demo city (9 h)",
            "Rain to the red signal at both gauges, the Pitkänsillanranta low point flooding past the closure "
            "depth and draining, the Siltavuori strait over its warning level.",
            _demo_storm,
        ),
    )
}
