"""Small helpers the text readers share: numbers with line numbers in their errors, and distance rules."""

from __future__ import annotations

import math

import numpy as np

from agents.sanitation.vrp.instance import InstanceError


def fail(source: str, lineno: int | None, message: str) -> InstanceError:
    """An `InstanceError` that names the file and, when known, the line."""
    where = f"{source}, line {lineno}" if lineno is not None else source
    return InstanceError(f"{where}: {message}")


def width_check(toks: list[str], *, fields: str, rows: str, source: str, lineno: int) -> None:
    """Refuse a row without one token per name in `fields` (e.g. "id x y demand"), naming them."""
    names = fields.split()
    if len(toks) != len(names):
        raise fail(source, lineno, f"{rows} need {len(names)} values ({fields}), found {len(toks)}")


def number(token: str, *, source: str, lineno: int, what: str) -> float:
    """Parse a real number or raise with the line and what the field was meant to be."""
    try:
        value = float(token)
    except ValueError:
        raise fail(source, lineno, f"{what} must be a number, found {token!r}") from None
    if not math.isfinite(value):
        raise fail(source, lineno, f"{what} must be finite, found {token!r}")
    return value


def integer(token: str, *, source: str, lineno: int, what: str) -> int:
    """Parse a whole number (``12`` or ``12.0``) or raise with the line."""
    value = number(token, source=source, lineno=lineno, what=what)
    if value != int(value):
        raise fail(source, lineno, f"{what} must be a whole number, found {token!r}")
    return int(value)


def euclid_nint(coords: np.ndarray) -> np.ndarray:
    """TSPLIB EUC_2D: Euclidean distance rounded to the nearest integer (CVRPLIB)."""
    return np.floor(_euclid(coords) + 0.5).astype(np.int64)


def euclid_ceil(coords: np.ndarray) -> np.ndarray:
    """TSPLIB CEIL_2D: Euclidean distance rounded up."""
    return np.ceil(_euclid(coords) - 1e-9).astype(np.int64)


def euclid_floor10(coords: np.ndarray) -> np.ndarray:
    """floor(10 x Euclidean), exact: the Solomon/DIMACS 'truncate to one decimal' rule in integer tenths.

    Computed on 100 x squared distance and corrected by one either way, because a plain float sqrt can
    land a hair under an exact integer (10 x 5.0 read as 49.999...) and truncation would then lose a unit.
    """
    diff = coords[:, None, :] - coords[None, :, :]
    sq100 = 100.0 * (diff**2).sum(axis=2)
    root = np.floor(np.sqrt(sq100)).astype(np.int64)
    root += ((root + 1).astype(float) ** 2 <= sq100).astype(np.int64)
    root -= (root.astype(float) ** 2 > sq100).astype(np.int64)
    return root


def _euclid(coords: np.ndarray) -> np.ndarray:
    diff = coords[:, None, :] - coords[None, :, :]
    return np.sqrt((diff**2).sum(axis=2))
