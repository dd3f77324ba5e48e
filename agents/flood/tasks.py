"""The flood agent has no tasks of its own: its evaluations are agent runs, which the runtime's
`agents.run_agent` executes on the realtime queue. Beat creates one every minute (trigger `monitor`) and
each ingest asks for one after its commit (`services.ingest.evaluation_request`, one pending at a time)."""
