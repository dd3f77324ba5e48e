"""The agent runtime (Django): the `Agent` base, the registry, runs, their tasks and schedules."""
