"""Instance readers: small files written here (each convention checked by hand), broken files with line
numbers, and the shared benchmark files cross-checked against the `vrplib` package."""

from __future__ import annotations

import math

import numpy as np
import pytest
import vrplib

from agents.sanitation.vrp import InstanceError, instance_format_detect, instance_parse, instance_read
from agents.sanitation.vrp.readers.kim import kim_fleet_lower_bound

from .conftest import TINY_CVRP as CVRP

VRPTW = """NAME : tiny-vrptw
TYPE : VRPTW
DIMENSION : 3
VEHICLES : 2
CAPACITY : 50
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 0 0
2 1 1
3 3 4
DEMAND_SECTION
1 0
2 10
3 20
TIME_WINDOW_SECTION
1 0 100
2 5 50
3 0 60
SERVICE_TIME_SECTION
1 0
2 7
3 9
DEPOT_SECTION
1
-1
EOF
"""

MULTITRIP = """NAME: tiny-mt
TYPE: MTVRPTWR
EDGE_WEIGHT_TYPE: EUC_2D
DIMENSION: 3
VEHICLES: 2
CAPACITY: 10
SERVICE_TIME: 9
NODE_COORD_SECTION
1\t0\t0
2\t1\t1
3\t3\t4
DEMAND_SECTION
1\t0
2\t6
3\t6
TIME_WINDOW_SECTION
1\t0\t500
2\t0\t300
3\t0\t300
RELEASE_TIME_SECTION
1\t0
2\t12
3\t0
VEHICLES_RELOAD_DEPOT_SECTION
1\t1
2\t1
DEPOT_SECTION
1
EOF
"""

SOLOMON = """TINY1

VEHICLE
NUMBER     CAPACITY
  3         100

CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME

    0      0         0          0          0       500          0
    1      1         1         10         10        50         10
    2      3         4         20          0        90         10
"""

# CRLF line ends and tabs, as in the published 102_stop.txt
KIM = """10.0 \t\t// vehicle capacity (yards), real number
15.5\t\t// total yardage allowed for a vehicle per day, real number
500\t\t// total number of regular stops for a vehicle allowed per day
3600\t\t// lunch time duration in second, lunch time should start between 11:00am and 12:00 pm
30\t\t// speed: MPH
Stop_ID\tX(feet)\tY(feet)\tEarly_St_Time (HHMM)\tLate_St_Time (HHMM)\tSvice_Time(Sec)\tLoad (Yards)\tType
0   0.00   0.00  0400 1500 0  9999.00 0
1   4400.00   0.00  0000 2400 1200  9999.00 2
2   0.00   2200.00  0730 1130 60    4.25 1
3   1100.00   1100.00  0000 2400 90    8.00 1
4   1100.00   1100.00  0000 0700 30    6.50 1
""".replace("\n", "\r\n")


def line_of(text: str, marker: str) -> int:
    """1-based line number of the first line containing `marker`."""
    return next(i for i, line in enumerate(text.splitlines(), start=1) if marker in line)


def test_detects_each_format():
    assert instance_format_detect(text=CVRP) == "vrplib"
    assert instance_format_detect(text=MULTITRIP) == "vrplib"
    assert instance_format_detect(text=SOLOMON) == "solomon"
    assert instance_format_detect(text=KIM) == "kim"
    with pytest.raises(InstanceError, match="cannot tell the format"):
        instance_format_detect(text="hello\nworld\n")


def test_explicit_format_overrides_detection():
    with pytest.raises(InstanceError, match="VEHICLE section is missing"):
        instance_parse(text=CVRP, fmt="solomon")
    with pytest.raises(InstanceError, match="unknown format"):
        instance_parse(text=CVRP, fmt="tsplib")


def test_cvrp_rounds_euclidean_to_nearest_integer():
    inst = instance_parse(text=CVRP)
    assert inst.name == "tiny-cvrp" and inst.fmt == "vrplib" and inst.cost_scale == 1
    assert [c.id for c in inst.clients] == [2, 3, 4] and inst.depots[0].id == 1
    assert [c.demand for c in inst.clients] == [(4,), (5,), (7,)]
    assert inst.distance[0, 1] == 5 and inst.distance[0, 2] == 10 and inst.distance[1, 2] == 5
    assert inst.distance[0, 3] == 1  # sqrt(2) = 1.41 rounds to 1
    assert inst.distance[2, 3] == 9  # sqrt(25 + 49) = 8.60 rounds to 9
    assert inst.vehicle_types[0].capacity == (10,) and inst.vehicle_types[0].count == 3  # open fleet
    assert inst.best_known == 22


def test_vrptw_works_in_tenths_truncated():
    inst = instance_parse(text=VRPTW)
    assert inst.cost_scale == 10
    assert inst.distance[0, 1] == 14  # sqrt(2) = 1.414 -> 1.4
    assert inst.distance[0, 2] == 50 and inst.distance[1, 2] == 36  # sqrt(13) = 3.605 -> 3.6
    a, b = inst.clients
    assert (a.tw_early, a.tw_late, a.service) == (50, 500, 70)
    assert (b.tw_early, b.tw_late, b.service) == (0, 600, 90)
    vt = inst.vehicle_types[0]
    assert (vt.count, vt.capacity, vt.tw_early, vt.tw_late) == (2, (50,), 0, 1000)


def test_multitrip_reads_reload_depots_release_times_and_its_own_units():
    inst = instance_parse(text=MULTITRIP)
    assert inst.cost_scale == 1  # reported in the file's x10 units, as the published values are
    assert inst.distance[0, 1] == 14 and inst.distance[1, 2] == 36
    vt = inst.vehicle_types[0]
    assert vt.count == 2 and vt.reload_depots == (0,) and vt.tw_late == 5000
    assert [c.release for c in inst.clients] == [120, 0]
    assert [c.service for c in inst.clients] == [90, 90]


def test_solomon_reads_depot_as_zero_and_works_in_tenths():
    inst = instance_parse(text=SOLOMON)
    assert inst.name == "TINY1" and inst.fmt == "solomon" and inst.cost_scale == 10
    assert inst.depots[0].id == 0 and [c.id for c in inst.clients] == [1, 2]
    assert inst.distance[0, 1] == 14 and inst.distance[0, 2] == 50
    assert (inst.clients[0].tw_early, inst.clients[0].tw_late, inst.clients[0].service) == (100, 500, 100)
    vt = inst.vehicle_types[0]
    assert (vt.count, vt.capacity, vt.tw_late) == (3, (100,), 5000)


def test_kim_reads_landfills_lunch_caps_and_travel_seconds():
    inst = instance_parse(text=KIM, source="tiny_kim.txt")
    assert inst.fmt == "kim" and inst.objective == "duration" and inst.name == "tiny_kim"
    assert [d.id for d in inst.depots] == [0] and [s.id for s in inst.disposal_sites] == [1]
    assert inst.disposal_sites[0].service == 1200
    assert [c.id for c in inst.clients] == [2, 3, 4]
    assert [c.demand for c in inst.clients] == [(425,), (800,), (650,)]  # hundredths of a yard
    assert (inst.clients[0].tw_early, inst.clients[0].tw_late) == (7 * 3600 + 1800, 11 * 3600 + 1800)
    assert inst.clients[1].tw_late == 24 * 3600
    # Manhattan feet; 30 mph = 44 ft/s
    assert inst.distance[0, 1] == 4400 and inst.duration[0, 1] == 100
    assert inst.distance[0, 3] == 2200 and inst.duration[0, 3] == 50
    assert inst.distance[2, 3] == 2200 and inst.duration[3, 4] == 0
    vt = inst.vehicle_types[0]
    assert vt.capacity == (1000,) and vt.daily_cap == 1550 and vt.max_stops == 500
    assert (vt.tw_early, vt.tw_late) == (4 * 3600, 15 * 3600)
    assert vt.lunch is not None and (vt.lunch.earliest, vt.lunch.latest, vt.lunch.duration) == (
        39600,
        43200,
        3600,
    )
    assert vt.unload_sites == (0,) and vt.reload_depots == ()
    # 18.75 yd over 15.5 yd a day: at least 2 trucks; the reader allows one more
    assert kim_fleet_lower_bound(instance=inst) == 2 and vt.count == 3


def test_kim_keeps_the_files_own_stop_ids():
    """The 1,351- and 1,599-stop files number sites with the city's ids, not 0, 1, 2 ..."""
    text = KIM.replace("\n0   0.00", "\n75632   0.00").replace("\n3   1100.00", "\n1682485   1100.00")
    inst = instance_parse(text=text, source="ids.txt")
    assert inst.depots[0].id == 75632 and [c.id for c in inst.clients] == [2, 1682485, 4]


def test_kim_reads_hundredths_of_an_hour_where_a_minute_field_cannot_be_hhmm():
    """1932_stop.txt and 2100_stop.txt write 16:45 as 1675; one such value switches the whole file."""
    inst = instance_parse(text=KIM.replace("0000 0700 30", "0000 0875 30"), source="hundredths.txt")
    assert inst.clients[2].tw_late == 8 * 3600 + 45 * 60
    assert inst.clients[0].tw_early == 7 * 3600 + 18 * 60  # 0730 is 7.30 h in such a file
    assert instance_parse(text=KIM).clients[0].tw_early == 7 * 3600 + 30 * 60


def test_reading_a_file_uses_a_sibling_solution_cost(tmp_path):
    (tmp_path / "tiny.vrp").write_text(CVRP.replace("(Optimal value: 22)", ""))
    assert instance_read(path=tmp_path / "tiny.vrp").best_known is None
    (tmp_path / "tiny.sol").write_text("Route #1: 1 2 3\nCost 21\n")
    assert instance_read(path=tmp_path / "tiny.vrp").best_known == 21


@pytest.mark.parametrize(
    ("text", "marker", "message"),
    [
        (CVRP.replace("DEMAND_SECTION\n1 0\n2 4\n3 5\n4 7\n", ""), None, "DEMAND_SECTION is missing"),
        (CVRP.replace("DEPOT_SECTION\n1\n-1\n", ""), None, "DEPOT_SECTION is missing"),
        (CVRP.replace("3 6 8", "3 6 eight"), "3 6 eight", "must be a number, found 'eight'"),
        (CVRP.replace("4 7\n", ""), "3 5", "DEMAND_SECTION has 3 rows, DIMENSION says 4"),
        (CVRP.replace("4 1 1", "3 1 1"), "3 1 1", "lists node 3 twice"),
        (CVRP.replace("4 1 1", "9 1 1"), "9 1 1", "node 9, outside 1..4"),
        (CVRP.replace("EUC_2D", "GEO"), "GEO", "unknown EDGE_WEIGHT_TYPE 'GEO'"),
        (CVRP.replace("CAPACITY : 10\n", ""), None, "CAPACITY specification is missing"),
        (CVRP.replace("DIMENSION : 4", "DIMENSION : four"), "four", "DIMENSION must be a number"),
        (CVRP.replace("2 3 4", "2 3 4 5"), "2 3 4 5", "need a node id and 2 values, found 3"),
        (
            VRPTW.replace("TIME_WINDOW_SECTION\n1 0 100\n2 5 50\n3 0 60\n", ""),
            "TYPE",
            "needs a TIME_WINDOW_SECTION",
        ),
        (VRPTW.replace("2 5 50", "2 50 5"), "2 50 5", "closes before it opens"),
        (
            MULTITRIP.replace("2\t1\nDEPOT", "DEPOT"),
            None,
            "line 25: VEHICLES_RELOAD_DEPOT_SECTION has 1 rows, VEHICLES says 2",
        ),
        (MULTITRIP.replace("2\t1\nDEPOT", "2\t3\nDEPOT"), "2\t3", "node 3 is not a depot"),
        (
            CVRP.replace("EUC_2D", "EXPLICIT\nEDGE_WEIGHT_FORMAT : LOWER_ROW\nEDGE_WEIGHT_SECTION\n1 2 3"),
            "EDGE_WEIGHT_SECTION",
            "has 3 values, LOWER_ROW for DIMENSION 4 needs 6",
        ),
    ],
)
def test_broken_vrplib_files_name_the_line(text, marker, message):
    with pytest.raises(InstanceError, match=_re(message)) as err:
        instance_parse(text=text, source="bad.vrp")
    assert str(err.value).startswith("bad.vrp")
    if marker is not None:
        assert f"line {line_of(text, marker)}:" in str(err.value)


def test_explicit_lower_row_matrix_is_read_symmetric():
    text = CVRP.replace(
        "EUC_2D", "EXPLICIT\nEDGE_WEIGHT_FORMAT : LOWER_ROW\nEDGE_WEIGHT_SECTION\n1\n2 3\n4 5 6"
    )
    inst = instance_parse(text=text)
    assert inst.distance.tolist() == [[0, 1, 2, 4], [1, 0, 3, 5], [2, 3, 0, 6], [4, 5, 6, 0]]


@pytest.mark.parametrize(
    ("text", "marker", "message"),
    [
        (
            SOLOMON.replace(
                "    2      3         4         20          0        90         10",
                "    2      3         4         20          0        90",
            ),
            "    2      3",
            "7 values",
        ),
        (SOLOMON.replace("    2      3  ", "    5      3  "), "    5      3", "expected customer 2, found 5"),
        (
            SOLOMON.replace("20          0        90", "20          0        x9"),
            "x9",
            "due date must be a number",
        ),
        (SOLOMON.replace("  3         100", "  3"), "  3", "needs 2 values"),
        (SOLOMON.replace("CUSTOMER\n", ""), None, "CUSTOMER section is missing"),
    ],
)
def test_broken_solomon_files_name_the_line(text, marker, message):
    with pytest.raises(InstanceError, match=_re(message)) as err:
        instance_parse(text=text, fmt="solomon", source="bad.txt")
    if marker is not None:
        assert f"line {line_of(text, marker)}:" in str(err.value)


@pytest.mark.parametrize(
    ("text", "marker", "message"),
    [
        (KIM.replace("0730 1130", "0730 2460"), "2460", "'2460' is not a time of day"),
        (KIM.replace("0730 1130", "7:30 1130"), "7:30", "must be a clock time HHMM"),
        (KIM.replace("4.25 1", "4.25 7"), "4.25 7", "Stop_Type must be 0"),
        (KIM.replace("60    4.25 1", "60    4.25"), "0730", "need 8 values"),
        (KIM.replace("9999.00 2", "9999.00 1"), None, "no landfill"),
        (KIM.replace("30\t\t// speed: MPH\r\n", ""), "Stop_ID", "speed must be a number, found 'Stop_ID'"),
        (KIM.replace("15.5\t\t//", "lots\t\t//"), "lots", "daily load cap must be a number"),
        (KIM.replace("3   1100.00", "2   1100.00"), "2   1100.00", "Stop_ID 2 is used twice (first on line 9)"),
    ],
)
def test_broken_kim_files_name_the_line(text, marker, message):
    with pytest.raises(InstanceError, match=_re(message)) as err:
        instance_parse(text=text, fmt="kim", source="bad_kim.txt")
    if marker is not None:
        assert f"line {line_of(text, marker)}:" in str(err.value)


def test_unreadable_file_is_an_instance_error(tmp_path):
    with pytest.raises(InstanceError, match="cannot read"):
        instance_read(path=tmp_path / "missing.vrp")
    (tmp_path / "binary.vrp").write_bytes(b"\xff\xfe\x00NAME")
    with pytest.raises(InstanceError, match="not a text file"):
        instance_read(path=tmp_path / "binary.vrp")


def _re(message: str) -> str:
    import re

    return re.escape(message)


# --- the shared benchmark files -------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "clients", "vehicles", "best"),
    [
        ("A-n32-k5.vrp", 31, 31, 784),
        ("X-n101-k25.vrp", 100, 100, 27591),
        ("C201R0.25.vrp", 100, 8, 15006),
    ],
)
def test_shared_vrplib_files_match_the_vrplib_package(shared_dir, name, clients, vehicles, best):
    path = shared_dir / "benchmarks" / "vrp" / name
    inst = instance_read(path=path)
    ref = vrplib.read_instance(str(path))
    assert len(inst.clients) == clients == ref["dimension"] - 1
    assert sum(vt.count for vt in inst.vehicle_types) == vehicles
    assert inst.best_known == best
    assert [c.demand[0] for c in inst.clients] == ref["demand"][1:].tolist()
    if name.startswith("C201"):
        assert np.array_equal(inst.distance, np.floor(10 * ref["edge_weight"]).astype(int))
        assert [c.release for c in inst.clients] == (10 * ref["release_time"][1:]).tolist()
        assert inst.vehicle_types[0].reload_depots == (0,)
    else:
        assert np.array_equal(inst.distance, np.round(ref["edge_weight"]).astype(int))


@pytest.mark.shared
@pytest.mark.parametrize(("name", "best"), [("C101.txt", 827.3), ("R101.txt", 1637.7)])
def test_shared_solomon_files_match_the_vrplib_package(shared_dir, name, best):
    path = shared_dir / "benchmarks" / "vrp" / name
    inst = instance_read(path=path)
    ref = vrplib.read_instance(str(path), instance_format="solomon")
    assert len(inst.clients) == 100 and inst.vehicle_types[0].count == 25 and inst.best_known == best
    assert np.array_equal(inst.distance, np.floor(10 * ref["edge_weight"]).astype(int))
    assert [c.tw_late for c in inst.clients] == (10 * ref["time_window"][1:, 1]).tolist()


@pytest.mark.shared
def test_shared_kim_file(shared_dir):
    inst = instance_read(path=shared_dir / "benchmarks" / "vrp" / "kim_102_stop.txt")
    assert len(inst.clients) == 99 and [s.id for s in inst.disposal_sites] == [1, 2]
    assert sum(c.demand[0] for c in inst.clients) == 89700  # 897 yd
    assert kim_fleet_lower_bound(instance=inst) == 3
    depot, landfill = inst.depots[0], inst.disposal_sites[0]
    feet = abs(1215029 - 1229125) + abs(3461398 - 3460107)
    assert inst.distance[depot.loc, landfill.loc] == feet
    assert inst.duration[depot.loc, landfill.loc] == math.floor(feet / (40 * 5280 / 3600) + 0.5)


@pytest.mark.parametrize("token", ["nan", "inf", "-1e400"])
def test_vrplib_coordinate_not_finite_is_refused_with_its_line(token):
    """Planar coordinates (VRPLIB, Solomon, Kim feet) get the finiteness check only, with the line named."""
    with pytest.raises(InstanceError, match=r"line 9: NODE_COORD_SECTION value must be finite"):
        instance_parse(text=VRPTW.replace("2 1 1\n", f"2 1 {token}\n"))

