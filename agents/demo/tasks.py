"""The demo agent has no tasks of its own: the runtime's `agents.run_agent` runs it."""
