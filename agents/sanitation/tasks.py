"""The sanitation agent has no Celery tasks of its own: nightly plans, re-plans after closures and
breakdowns, and a dispatcher's "re-optimise" all run as agent runs through the runtime's
`agents.run_agent` task on the planning queue (see agent.py)."""
