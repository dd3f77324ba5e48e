"""The agents' shared geodesy (`agents.geo`): one haversine, keyword-only, and no Django behind it."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agents.geo import haversine_m, point_offset


def test_haversine_takes_named_coordinates_only():
    # Why keyword-only: the two haversines it replaced took (lat, lon) and (lon, lat); a positional call
    # with the order swapped measured a different distance without any error.
    with pytest.raises(TypeError):
        haversine_m(60.17, 24.94, 60.18, 24.94)
    one_degree_north = haversine_m(lat1=60.0, lon1=24.9, lat2=61.0, lon2=24.9)
    assert one_degree_north == pytest.approx(111_195, rel=1e-3)
    # the same pair named in the other order is the same distance
    assert haversine_m(lon1=24.9, lat1=60.0, lon2=24.9, lat2=61.0) == one_degree_north


def test_haversine_on_arrays_and_offsets_agree():
    lat, lon = 40.0, -75.0
    north = point_offset(lat=lat, lon=lon, east_m=0.0, north_m=1000.0)
    east = point_offset(lat=lat, lon=lon, east_m=1000.0, north_m=0.0)
    got = haversine_m(lat1=np.array([lat, lat]), lon1=np.array([lon, lon]),
                      lat2=np.array([north[0], east[0]]), lon2=np.array([north[1], east[1]]))
    assert got == pytest.approx([1000.0, 1000.0], abs=0.5)


def test_geo_imports_no_django():
    """The domain cores (no Django allowed) import it, so it must not pull Django in."""
    code = "import sys, agents.geo; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
