"""Small geodesy helpers for every agent's domain core: great-circle distance, a local metric projection, a
point offset. No Django (the cores that use it must not import it), and keyword-only arguments: two
haversines once took (lat, lon) and (lon, lat) in opposite orders."""
from __future__ import annotations

import math

import numpy as np
from pyproj import CRS, Transformer

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(*, lat1, lon1, lat2, lon2):
    """Great-circle distance in metres; works on scalars and numpy arrays alike."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def utm_crs(*, lat: float, lon: float) -> CRS:
    """The UTM zone CRS around a point: metric, and accurate to well under 0.1 % across a city."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def metric_transformer(*, lat: float, lon: float) -> Transformer:
    """A WGS84 -> local UTM transformer (always_xy: call it with lon, lat)."""
    return Transformer.from_crs(CRS.from_epsg(4326), utm_crs(lat=lat, lon=lon), always_xy=True)


def point_offset(*, lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The WGS84 point `east_m` east and `north_m` north of (lat, lon), on a local spherical approximation."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon
