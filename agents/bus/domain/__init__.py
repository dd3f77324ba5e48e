"""Pure-Python domain core of the bus dispatch agent (no Django, no database).

- `gtfs`: read a GTFS zip (partridge), validate it, expand a service day into trips (frequencies included).
- `blocking`: minimum-fleet vehicle blocks (exact, scipy sparse assignment), plan checks, edits, exports.
- `realtime`: GTFS-Realtime / JSON AVL positions, placement on routes, live headways, holding advice.
- `simulation`: a seeded loop-route replay with and without headway-based holding.
- `synthetic`: GTFS zip writers (tiny test feeds, a synthetic city network).
- `cli`: `python -m agents.bus.domain.cli plan|positions ... --json`.
"""
