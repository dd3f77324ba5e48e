"""The flood agent's REST API: readings ingest (gateways with a scoped token), map layers and hydrographs,
alerts with dispatcher actions, CAP import, and the public CAP/ATOM feed of active alerts."""
