"""The results statement's settings, each read from Django settings with a default.

The CO2 emission factors are the kilograms of CO2 one vehicle-km emits: a refuse truck burns about 0.5 L of
diesel a km and a city bus about 0.4 L, at 2.68 kg of CO2 per litre of diesel. They are documented defaults
(docs/operations.md, "Results statement"), to be replaced by the fleet's own fuel records."""
from __future__ import annotations

from agents.runtime.conf import settings_reader

DEFAULTS: dict[str, object] = {
    "RESULTS_CO2_KG_PER_TRUCK_KM": 1.34,
    "RESULTS_CO2_KG_PER_BUS_KM": 1.07,
}

conf = settings_reader(DEFAULTS)
