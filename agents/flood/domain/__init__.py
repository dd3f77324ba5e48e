"""Pure domain core of the flood-control agent: reading parsers, quality control, rules, the alert state
machine and CAP 1.2. No Django here; the agent's services wire it to the database (see README.md)."""

from .alerts import AlertEvent, AlertStateError, AlertTracker, OpenAlert, TrackerSettings
from .cap import (
    AtomEntry,
    CapAlertInput,
    CapArea,
    CapError,
    CapMessage,
    CapReference,
    alert_to_cap,
    alerts_to_atom,
    cap_msg_type_for,
    cap_parse,
    cap_validate,
)
from .parsers import FORMATS, ReadingsFormatError, readings_format_detect, readings_parse
from .qc import QCFlag, QCSettings, SensorFault, qc_settings_default, sensor_health, series_qc
from .replay import InputEvent, LeadTime, ReplayResult, SensorConfig, SeriesReadings, readings_replay
from .rules import (
    DepthSettings,
    GaugeSettings,
    RainfallSettings,
    RainThreshold,
    RuleResult,
    depth_evaluate,
    level_evaluate,
    rainfall_evaluate,
)
from .vocabulary import Level, ParseResult, Reading, RowError, Station

__all__ = [
    "FORMATS",
    "AlertEvent",
    "AlertStateError",
    "AlertTracker",
    "AtomEntry",
    "CapAlertInput",
    "CapArea",
    "CapError",
    "CapMessage",
    "CapReference",
    "DepthSettings",
    "GaugeSettings",
    "InputEvent",
    "LeadTime",
    "Level",
    "OpenAlert",
    "ParseResult",
    "QCFlag",
    "QCSettings",
    "RainThreshold",
    "RainfallSettings",
    "Reading",
    "ReadingsFormatError",
    "ReplayResult",
    "RowError",
    "RuleResult",
    "SensorConfig",
    "SensorFault",
    "SeriesReadings",
    "Station",
    "TrackerSettings",
    "alert_to_cap",
    "alerts_to_atom",
    "cap_msg_type_for",
    "cap_parse",
    "cap_validate",
    "depth_evaluate",
    "level_evaluate",
    "qc_settings_default",
    "rainfall_evaluate",
    "readings_format_detect",
    "readings_parse",
    "readings_replay",
    "sensor_health",
    "series_qc",
]
