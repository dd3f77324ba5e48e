"""The city-scale loader (`load_demo_city --synthetic --scale N`) and its benchmark (bench/city_scale.py) at
a tiny scale: every agent's data grows with the scale, no history unless asked, `--if-empty` keeps a
loaded city, and each benchmark part measures something true on it."""
import io
import json
import sys

import pytest
from django.core.management import call_command

from fixtures.demo_city import demo_city_load

pytestmark = pytest.mark.django_db(transaction=False)

SCALE = 2


@pytest.fixture
def scale_city(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    lines: list[str] = []
    out = demo_city_load(synthetic=True, scale=SCALE, progress=lines.append)
    return out, lines


@pytest.fixture
def bench():
    from django.conf import settings

    sys.path.insert(0, str(settings.BASE_DIR / "bench"))
    try:
        import city_scale

        yield city_scale
    finally:
        sys.path.remove(str(settings.BASE_DIR / "bench"))


def test_scale_city_loads_in_proportion_keeps_with_if_empty_and_benchmarks(scale_city, bench, capsys):
    """One load for all three checks: a load is the slow part (tens of seconds)."""
    _every_agents_data_in_proportion_and_no_history(*scale_city)
    _if_empty_keeps_the_loaded_city()
    _bench_parts_measure_the_scale_city(bench, capsys)


def _every_agents_data_in_proportion_and_no_history(out, lines):
    from agents.bus.models import Trip
    from agents.flood.models import FloodZone, Reading, Sensor, Series
    from agents.roads.models import Defect
    from agents.sanitation.models import Bin, FillReading, Pickup, Truck
    from city_ops.city.models import RoadSegment
    from fixtures import bus_demo, flood_demo, roads_demo, sanitation_demo

    assert RoadSegment.objects.count() == out["network"]["segments"] > 1000 * SCALE
    assert Bin.objects.count() == sanitation_demo.BINS_PER_SCALE_SYNTHETIC * SCALE
    assert Truck.objects.count() == 3
    zones = round(flood_demo.ZONES_PER_SCALE * SCALE)
    assert FloodZone.objects.count() == zones
    assert Sensor.objects.count() == zones * (flood_demo.DEPTH_SENSORS_PER_ZONE + 1)
    assert Defect.objects.filter(synthetic=True, best_photo__model_name=roads_demo.SYNTHETIC_ROWS_MODEL).count() == \
        roads_demo.SYNTHETIC_ROWS_PER_SCALE * SCALE
    assert Trip.objects.values("route").distinct().count() == max(
        3, round(bus_demo.SYNTHETIC_ROUTES_PER_SCALE * SCALE))
    # no history on a synthetic city: each series has its latest value only, bins no past pickups
    assert Reading.objects.count() == Series.objects.count()
    assert FillReading.objects.count() == Pickup.objects.count() == 0
    # one progress line per step, with its seconds
    assert [line.split(":")[0] for line in lines][:2] == ["network", "city"]
    assert all(line.rstrip().endswith(" s") for line in lines)


def _if_empty_keeps_the_loaded_city():
    from agents.sanitation.models import Bin
    from city_ops.city.models import RoadSegment

    segments, bins = RoadSegment.objects.count(), set(Bin.objects.values_list("pk", flat=True))
    err = io.StringIO()
    call_command("load_demo_city", "--synthetic", "--scale", "3", "--if-empty", "--no-users", stderr=err)
    assert "already loaded" in err.getvalue()
    assert RoadSegment.objects.count() == segments
    assert set(Bin.objects.values_list("pk", flat=True)) == bins


def _bench_photos_run_end_to_end_and_leave_nothing(bench):
    from agents.roads.models import CameraRun, Defect, InspectionPhoto

    before = (CameraRun.objects.count(), InspectionPhoto.objects.count(), Defect.objects.count())
    photos = bench.photos_bench(frames=8, reference_frames=0, reference_db=None, database=bench._database)
    run = photos["city"]
    # every frame lies on the drive's track (the walk over connected streets), is stored and detected
    assert run["frames"] == run["placed"] == run["processed"] == 8 and run["failed"] == 0
    assert run["images_per_s"] > 0 and run["queries_per_image"] > 0
    stages = run["stages_ms_per_image"]
    assert stages["model"]["wall_ms"] > 0 and stages["privacy_blur_and_kept_jpeg"]["cpu_ms"] > 0
    assert stages["upload_check_decode"]["wall_ms"] > 0
    assert run["snap_calls"] <= run["processed"]  # one snap a photo at most, whatever its boxes
    assert photos["reference_city"].startswith("not measured")
    # the run was rolled back: the city is as it was
    assert (CameraRun.objects.count(), InspectionPhoto.objects.count(), Defect.objects.count()) == before


def _bench_parts_measure_the_scale_city(bench, capsys):
    snap = bench.snap_bench(points=20, reference_db=None, previous_points=2)
    assert snap["city"]["snapped"] == 20  # every point lies a few metres off a junction
    assert snap["city"]["segment_nearest"]["p95_ms"] >= snap["city"]["segment_nearest"]["p50_ms"] > 0
    net = bench.network_bench(points=40, reference_sources=2)
    assert net["all_pairs_routable"]
    # ours and networkx find the same fastest time on the same graph
    assert net["route_time_s"] == pytest.approx(net["ref_networkx_route_time_s"], abs=0.2)
    flood = bench.flood_bench(ticks=2)
    assert flood["sensors"] == 20 and flood["tick"]["n"] == 2
    bus = bench.bus_bench()
    assert bus["trips"] > 0 and bus["vehicles"] >= bus["lower_bound"]
    bins = bench.sanitation_bench(bins=25, trucks=2, seconds=1.0)
    assert bins["bins"] == 25 and bins["bins_served"] > 0 and bins["violations"] == 0
    _bench_photos_run_end_to_end_and_leave_nothing(bench)

    sys_argv = sys.argv
    sys.argv = ["city_scale.py", "--quick", "--json", "--only", "snap", "--reference-db", ""]
    try:
        assert bench.main() == 0
    finally:
        sys.argv = sys_argv
    out = json.loads(capsys.readouterr().out)  # --json: JSON alone on stdout
    assert out["parts"]["snap"]["reference_city"].startswith("not measured")
    assert out["parts"]["bus"].startswith("not measured")
