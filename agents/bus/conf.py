"""The bus agent's settings, each read from Django settings with a default (so a deployment overrides any
of them in its environment-driven settings without this app changing)."""

from __future__ import annotations

from agents.runtime.conf import settings_reader

DEFAULTS: dict[str, object] = {
    # A GTFS zip larger than this is refused before it is read (upload page, API, import command).
    "BUS_FEED_MAX_UPLOAD_BYTES": 100 * 1024 * 1024,
    # A GTFS-Realtime VehiclePositions body larger than this is refused (API push and the poll).
    "BUS_POSITIONS_MAX_BYTES": 20 * 1024 * 1024,
    # The VehiclePositions URL the realtime queue polls ("" = no polling), how often and how long it waits.
    "BUS_GTFS_RT_URL": "",
    "BUS_GTFS_RT_POLL_S": 30,
    "BUS_GTFS_RT_TIMEOUT_S": 10,
    # A vehicle position is matched to a feed whose stops lie within this distance.
    "BUS_FEED_MATCH_M": 3000.0,
    # Speed for the holding advice, and the longest hold advised.
    "BUS_SPEED_KMH": 18.0,
    "BUS_MAX_HOLD_S": 180.0,
    # No second warning of one kind on one route within this time.
    "BUS_WARNING_COOLDOWN_S": 600,
    # Position history and headway snapshots older than this are pruned (the history by whole UTC days).
    "BUS_POSITION_HISTORY_DAYS": 7,
    # Days of position partitions made ahead of today (UTC) by the prune and after every migrate.
    "BUS_POSITION_PARTITIONS_AHEAD": 3,
    # Positions within this window count for a headway check; a vehicle silent longer is not live.
    "BUS_POSITION_WINDOW_S": 600,
    "BUS_VEHICLE_STALE_S": 900,
    # Minimum layover between two trips of a block; longest idle wait linked (None = every pair, exact).
    "BUS_LAYOVER_MIN": 5.0,
    "BUS_PLAN_MAX_WAIT_MIN": None,
    # Empty running off the road network: great circle x detour at this speed; a stop further than
    # BUS_DEADHEAD_MAX_SNAP_M from the network falls back to it.
    "BUS_DEADHEAD_DETOUR": 1.3,
    "BUS_DEADHEAD_SPEED_KMH": 25.0,
    "BUS_DEADHEAD_MAX_SNAP_M": 300.0,
    # City place kinds a block starts and ends at, first found wins.
    "BUS_DEPOT_PLACE_KINDS": ("bus_depot", "depot"),
}

conf = settings_reader(DEFAULTS)  # the value of a BUS_* setting (Django settings first, then the default above)
