"""Writes and domain rules of the bus agent, one module per concern:

- `feeds`: GTFS import (validate, then COPY into PostGIS in one transaction).
- `deadhead`: empty running on the road network, straight line where the network does not reach.
- `plans`: vehicle plans (exact minimum fleet), versions, edits, approval, exports.
- `realtime`: vehicle positions, live headways, bunching/gap warnings and decisions.
- `detours`: closures -> affected routes, skipped stops, detour paths, GTFS-Realtime feeds.
- `schedules`: the GTFS-Realtime poll's beat entry (an interval, beside the declared crontab schedules).
"""
