"""The printable inspection report, HTML and PDF from one read (selectors.inspection_report), per segment and
per day, on photos detected with the tiny model on the real network: the PDF is a valid document with a page
per content, the defects' rows (class, confidence, size, severity, score, status, condition index), the
blurred copies embedded once each with their boxes drawn; bad queries answer 400/404; roles are checked."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from agents.roads.models import Defect, SegmentCondition
from agents.roads.report_pdf import TABLE_COLUMNS, defect_row, font_path, report_pdf_render
from agents.roads.selectors import inspection_report
from agents.roads.services.detection import photos_detect
from agents.roads.services.photos import photos_receive

from .conftest import photo_bytes, spot_on, upload_file

pytestmark = pytest.mark.usefixtures("tiny_model")
PAGE = re.compile(rb"/Type\s*/Page\b")
IMAGE = re.compile(rb"/Subtype\s*/Image\b")


@pytest.fixture
def inspected(long_segment, users):
    """Three photos on the long street over two days: two sightings of one pothole (merged) and another
    pothole 60 % further along; detected, ranked, ordered."""
    a, b = spot_on(long_segment, 0.2), spot_on(long_segment, 0.8)
    files = [
        upload_file(
            photo_bytes(lon=a.lon, lat=a.lat, seed=1, cell=(1, 2), taken="2025:06:01 09:00:00"), "a.jpg"
        ),
        upload_file(
            photo_bytes(lon=a.lon, lat=a.lat, seed=2, cell=(1, 2), taken="2025:06:02 09:00:00"), "b.jpg"
        ),
        upload_file(
            photo_bytes(lon=b.lon, lat=b.lat, seed=3, cell=(2, 1), taken="2025:06:02 10:00:00"), "c.jpg"
        ),
    ]
    photos = [r.photo for r in photos_receive(files=files, uploader=users.crew, enqueue=False)]
    assert photos_detect(photo_ids=[p.pk for p in photos]).done == 3
    return photos


@pytest.fixture
def dispatcher(users):
    c = Client()
    c.force_login(users.dispatcher)
    return c


def _tj_strings(pdf: bytes) -> list[str]:
    """The text a core-font, uncompressed fpdf2 page draws ((...) Tj operands, unescaped)."""
    raw = re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", pdf)
    return [re.sub(rb"\\(.)", rb"\1", r).decode("latin-1") for r in raw]


def test_segment_report_pdf(dispatcher, users, long_segment, inspected):
    resp = dispatcher.get(f"/roads/report.pdf?segment={long_segment.pk}")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert resp["Content-Disposition"] == f'inline; filename="inspection-segment-{long_segment.pk}.pdf"'
    body = resp.content
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert len(PAGE.findall(body)) >= 1
    report = inspection_report(user=users.dispatcher, segment_id=long_segment.pk)
    shown = {shot.photo.pk for section in report.sections for shot in section.shots}
    assert len(report.sections) == Defect.objects.filter(segment=long_segment).count() == 2
    assert shown == {p.pk for p in inspected}
    # each blurred copy is embedded once, however many defects show it
    assert len(IMAGE.findall(body)) == len(shown)

    # the same read, uncompressed and in the core font, so the page text can be read back
    pdf = report_pdf_render(report=report, city_name="Helsinki", compress=False, ttf=None)
    texts = _tj_strings(pdf)
    condition = SegmentCondition.objects.get(segment=long_segment)
    for section in report.sections:
        d = section.defect
        row = dict(zip([c[0] for c in TABLE_COLUMNS], defect_row(section)))
        assert row["#"] == f"#{d.pk}" and row["conf."] == f"{d.confidence:.2f}"
        assert (
            row["score"] == f"{d.priority_score:.0f}" and row["cond."] == f"{condition.condition_index:.0f}"
        )
        assert row["severity"] == d.severity_label and row["status"].startswith(d.status)
        for name in ("#", "class", "conf.", "severity", "score", "cond."):
            assert row[name] in texts, (name, row[name])
    assert (
        f"condition index {condition.condition_index:.0f} ({condition.open_defects} open defects)"
        in " ".join(texts)
    )
    # one box per photo shown with its defect: vector rectangles drawn in the severity colours
    colors = {d.defect.severity_level for d in report.sections}
    assert colors and len(re.findall(rb"\d re S", pdf)) >= sum(len(s.shots) for s in report.sections)


def test_day_report_pdf_and_html_show_the_same_defects(dispatcher, users, inspected):
    html = dispatcher.get("/roads/report/?date=2025-06-02").content.decode()
    in_html = [int(x) for x in re.findall(r'data-defect="(\d+)"', html)]
    assert 'href="/roads/report.pdf?date=2025-06-02"' in html
    report = inspection_report(user=users.dispatcher, day=__import__("datetime").date(2025, 6, 2))
    assert [s.defect.pk for s in report.sections] == in_html and len(in_html) == 2
    # only that day's photos: the first sighting (June 1st) is not shown
    assert {shot.photo.pk for s in report.sections for shot in s.shots} == {inspected[1].pk, inspected[2].pk}
    resp = dispatcher.get("/roads/report.pdf?date=2025-06-02")
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF-")
    assert resp["Content-Disposition"].endswith('filename="inspection-2025-06-02.pdf"')
    assert len(IMAGE.findall(resp.content)) == 2
    empty = report_pdf_render(
        report=inspection_report(user=users.dispatcher, day=__import__("datetime").date(2024, 1, 1)),
        compress=False,
        ttf=None,
    )
    assert "No defects in this report." in _tj_strings(empty) and len(PAGE.findall(empty)) == 1


def test_bad_report_queries(dispatcher, inspected):
    assert dispatcher.get("/roads/report.pdf?date=2025-13-45").status_code == 400
    assert dispatcher.get("/roads/report.pdf?segment=999999999").status_code == 404
    assert dispatcher.get("/roads/report.pdf?segment=abc").status_code == 404
    assert dispatcher.get("/roads/report/?segment=999999999").status_code == 404


def test_any_street_name_prints(users, long_segment, inspected):
    long_segment.name = "Хельсинки ≈ 北京路 – Esplanadi"
    long_segment.save(update_fields=["name"])
    report = inspection_report(user=users.dispatcher, segment_id=long_segment.pk)
    core = report_pdf_render(report=report, compress=False, ttf=None)  # Latin-1 font: stand-ins, no failure
    assert "~" in " ".join(_tj_strings(core)) and "- Esplanadi" in " ".join(_tj_strings(core))
    ttf = font_path()
    # make test installs fonts-dejavu-core (deploy/local/services.sh), as the Dockerfile does: a missing font is a
    # broken install, not a reason to skip
    assert ttf is not None, "no DejaVu Sans on this system (Debian: fonts-dejavu-core)"
    full = report_pdf_render(report=report, ttf=ttf)
    assert full.startswith(b"%PDF-") and b"/FontFile2" in full  # the TrueType font is embedded


def test_report_pdf_is_for_dispatchers(users, inspected, long_segment):
    url = f"/roads/report.pdf?segment={long_segment.pk}"
    assert Client().get(url).status_code == 302
    crew = Client()
    crew.force_login(users.crew)
    assert crew.get(url).status_code == 403
