"""The flood agent's settings, each read from Django settings with a default (so a deployment overrides any
of them in its environment-driven settings without this app changing)."""

from __future__ import annotations

from agents.runtime.conf import settings_reader

DEFAULTS: dict[str, object] = {
    # Hysteresis: an alert clears only after its level has held below the threshold this long.
    "FLOOD_HOLD_MINUTES": 30,
    # Readings this far back are read again as context for each evaluation (rain accumulations).
    "FLOOD_CONTEXT_HOURS": 24,
    # The city's rainstorm signals (None = CMA's blue/yellow/orange/red).
    "FLOOD_RAINSTORM_SIGNALS": None,
    # CAP messages: sender id, sender name (None = "<CITY_NAME> flood control") and language.
    "FLOOD_CAP_SENDER": "flood-control@city-ops.example",
    "FLOOD_CAP_SENDER_NAME": None,
    "FLOOD_CAP_LANGUAGE": "en",
    # Readings storage (monthly partitions, `readings_partitions_maintain`): whole months of readings kept
    # before the current month (0 = keep every reading for ever), and months of partitions made ahead.
    "FLOOD_READING_RETENTION_MONTHS": 0,
    "FLOOD_READING_PARTITIONS_AHEAD": 2,
    # Sensor faults of one evaluation: this many sensors newly in fault together are one outage (one notice
    # and one work order with the list: a gateway, the power, the network); below it, this many of one zone
    # get one notice and order for the zone, and the rest one each.
    "FLOOD_FAULT_OUTAGE_MIN": 20,
    "FLOOD_FAULT_GROUP_MIN": 3,
}

conf = settings_reader(DEFAULTS)  # the value of a FLOOD_* setting (Django settings first, then the default above)
