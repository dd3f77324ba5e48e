"""Unit conversion to each parameter's canonical unit (level m, discharge m3/s, rainfall mm, depth cm)."""

from __future__ import annotations

import re

from .vocabulary import CANONICAL_UNITS


class UnitError(ValueError):
    """A unit that cannot be converted to the parameter's canonical unit."""


_FT = 0.3048
_CFS = _FT**3  # 0.028316846592 m3/s per ft3/s

# factor to multiply by, per parameter, keyed by normalised unit spelling
_FACTORS: dict[str, dict[str, float]] = {
    "level": {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": _FT, "in": 0.0254},
    "discharge": {"m3/s": 1.0, "l/s": 0.001, "ft3/s": _CFS},
    "rainfall": {"mm": 1.0, "cm": 10.0, "in": 25.4},
    "depth": {"cm": 1.0, "mm": 0.1, "m": 100.0, "in": 2.54, "ft": 30.48},
}

_ALIASES: dict[str, str] = {
    "metre": "m",
    "metres": "m",
    "meter": "m",
    "meters": "m",
    "feet": "ft",
    "foot": "ft",
    "inch": "in",
    "inches": "in",
    "m3s": "m3/s",
    "m3_s": "m3/s",
    "m^3/s": "m3/s",
    "m³/s": "m3/s",
    "cms": "m3/s",
    "cumecs": "m3/s",
    "ft3/s": "ft3/s",
    "ft^3/s": "ft3/s",
    "ft³/s": "ft3/s",
    "cfs": "ft3/s",
    "ft3_s": "ft3/s",
    "l_s": "l/s",
    "ls": "l/s",
}

# EA unit names carry the datum after the unit ("mASD" = metres above stage datum, "mAOD" = above
# Ordnance Datum): the datum does not change the scale, so it is stripped before lookup.
_DATUM_SUFFIX = re.compile(r"^(m|ft)(asd|aod|bd|ld|cd)$")


def unit_normalise(unit: str) -> str:
    """A unit spelling reduced to the key used in the conversion table ("mASD" -> "m", "cfs" -> "ft3/s")."""
    text = unit.strip().replace(" ", "")
    lowered = text.lower()
    match = _DATUM_SUFFIX.match(lowered)
    if match:
        return match.group(1)
    return _ALIASES.get(lowered, _ALIASES.get(text, lowered))


def value_convert(*, value: float, unit: str | None, parameter: str) -> float:
    """`value` given in `unit` expressed in the canonical unit of `parameter` (None = already canonical)."""
    if parameter not in CANONICAL_UNITS:
        raise UnitError(f"unknown parameter {parameter!r}; expected one of {', '.join(CANONICAL_UNITS)}")
    if unit is None or not unit.strip():
        return float(value)
    key = unit_normalise(unit)
    factor = _FACTORS[parameter].get(key)
    if factor is None:
        known = ", ".join(sorted(_FACTORS[parameter]))
        raise UnitError(
            f"unit {unit!r} cannot be converted to {CANONICAL_UNITS[parameter]} for {parameter} "
            f"(known: {known})"
        )
    return float(value) * factor
