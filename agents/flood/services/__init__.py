"""Writes and domain rules of the flood agent, by concern: ingest (readings in), evaluation (the live loop),
drills (a file through the same loop in memory), alerts (effects on the city and dispatcher actions), cap
(CAP 1.2 in and out), storage (the readings' monthly partitions and retention)."""
from .alerts import alert_acknowledge, alert_escalate, closure_lift_confirm, events_apply
from .cap import alert_cap_xml, alerts_atom_xml, cap_import, cap_xsd_default
from .drills import (
    DrillResult,
    drill_pause,
    drill_replay,
    drill_resume,
    drill_start,
    drill_stop,
    drill_tick_advance,
)
from .evaluation import EvaluationOutcome, evaluation_run
from .ingest import IngestResult, evaluation_request, readings_ingest, readings_store, sensors_register
from .storage import PartitionsOutcome, readings_partitions_maintain

__all__ = [
    "DrillResult",
    "EvaluationOutcome",
    "IngestResult",
    "PartitionsOutcome",
    "alert_acknowledge",
    "alert_cap_xml",
    "alert_escalate",
    "alerts_atom_xml",
    "cap_import",
    "cap_xsd_default",
    "closure_lift_confirm",
    "drill_pause",
    "drill_replay",
    "drill_resume",
    "drill_start",
    "drill_stop",
    "drill_tick_advance",
    "evaluation_request",
    "evaluation_run",
    "events_apply",
    "readings_ingest",
    "readings_partitions_maintain",
    "readings_store",
    "sensors_register",
]
