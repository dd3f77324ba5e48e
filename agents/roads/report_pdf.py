"""The inspection report as a PDF (fpdf2, pure Python): the same read as the HTML report
(``selectors.inspection_report``), laid out for A4: a header with the segment's condition index, a table of the
defects (class, confidence, size, severity, score, status, road and its condition index), then each defect
with its photos and the boxes drawn over them as vector rectangles.

Only the privacy-safe copy of a photo (faces and plates blurred, no EXIF) goes into a PDF, never the original,
reduced to ``MAX_SIDE`` pixels (a printed photo 4.5-9 cm wide needs no more). Text is set in DejaVu Sans when
the system has it (Debian's fonts-dejavu-core; any street name prints) or in ``ROADS_PDF_FONT``; otherwise in
the PDF core font Helvetica, which covers Latin-1 only (other characters print as close ASCII or "?").
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from PIL import Image

from city_ops.core.timeutil import city_tz

from .conf import conf
from .selectors import SEVERITY_COLORS, InspectionReport, ReportSection, ReportShot

log = logging.getLogger(__name__)

MAX_SIDE = 900  # pixels of an embedded photo's longest side
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
)
_LATIN1_SUBSTITUTES = str.maketrans(
    {
        "–": "-",
        "—": "-",
        "≈": "~",
        "…": "...",
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "≥": ">=",
        "≤": "<=",
        "→": "->",
        "←": "<-",
        "•": "·",
    }
)
PAGE_W, MARGIN = 210.0, 12.0
CONTENT_W = PAGE_W - 2 * MARGIN
# (heading, width in mm, alignment) of the defects table; 186 mm in all
TABLE_COLUMNS = (
    ("#", 13, "R"),
    ("class", 27, "L"),
    ("conf.", 13, "R"),
    ("size", 31, "L"),
    ("severity", 19, "L"),
    ("score", 12, "R"),
    ("status", 28, "L"),
    ("road", 31, "L"),
    ("cond.", 12, "R"),
)


def _hex_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def font_path() -> Path | None:
    """The TTF font for reports: ROADS_PDF_FONT when set (an empty string forces the core font), else the
    first DejaVu Sans found in the usual system places; None means Helvetica (Latin-1)."""
    configured = conf("ROADS_PDF_FONT")
    if configured is not None:
        return Path(configured) if configured and Path(configured).is_file() else None
    return next((Path(p) for p in FONT_CANDIDATES if Path(p).is_file()), None)


class _ReportPDF(FPDF):
    """A4 portrait with a footer: the city, the report's title and the page number."""

    def __init__(self, *, footer_text: str, ttf: Path | None):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        self.unicode = ttf is not None
        if ttf is not None:
            bold = ttf.with_name(ttf.stem + "-Bold" + ttf.suffix)
            self.add_font("Report", "", str(ttf))
            self.add_font("Report", "B", str(bold if bold.is_file() else ttf))
            self.report_family = "Report"
        else:
            self.report_family = "Helvetica"
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=16)

    def text_safe(self, value) -> str:
        """``value`` as text the current font can set."""
        text = str(value if value is not None else "")
        if self.unicode:
            return text
        return text.translate(_LATIN1_SUBSTITUTES).encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.report_family, "B" if bold else "", size)

    def footer(self) -> None:
        self.set_y(-12)
        self.font(7.5)
        self.set_text_color(110, 110, 110)
        self.cell(CONTENT_W * 0.8, 5, self.text_safe(self.footer_text), new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.cell(CONTENT_W * 0.2, 5, f"{self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _status_text(section: ReportSection) -> str:
    d = section.defect
    from city_ops.console.templatetags.console import status_label

    text = pgettext("road inspection status", d.status)
    if d.work_order_id:
        order_status = status_label(d.work_order.status) if d.work_order else ""
        text += f" · #{d.work_order_id} {order_status}".rstrip()
    return text


def _size_text(d) -> str:
    text = f"{d.area_share * 100:.1f} %"
    if d.crack_length is not None:
        text += " · ≈" + _("%(m)s m long") % {"m": f"{d.crack_length:.1f}"}
    elif d.width_m and d.length_m:
        text += f" · ≈{d.width_m:.1f}×{d.length_m:.1f} m"
    return text


def _severity_text(level: int, label: str) -> str:
    words = {4: _("critical"), 3: _("severe"), 2: _("moderate"), 1: _("minor")}
    return words.get(level, label)


def _class_text(name: str) -> str:
    return pgettext("road defect class", name)


def _class_counts_text(report: InspectionReport) -> list[str]:
    counts = dict(report.class_counts)
    return [
        ngettext("%(n)s pothole", "%(n)s potholes", counts["pothole"]) % {"n": counts["pothole"]},
        ngettext("%(n)s crack", "%(n)s cracks", counts["crack"]) % {"n": counts["crack"]},
    ]


def defect_row(section: ReportSection) -> list[str]:
    """The defects table's cells for one defect (what the PDF prints, in TABLE_COLUMNS order)."""
    d = section.defect
    road = (d.segment.name or _("unnamed road")) if d.segment_id else "-"
    cond = f"{section.condition.condition_index:.0f}" if section.condition else "-"
    return [
        f"#{d.pk}",
        _class_text(d.class_name),
        f"{d.confidence:.2f}",
        _size_text(d),
        _severity_text(d.severity_level, d.severity_label),
        f"{d.priority_score:.0f}",
        _status_text(section),
        road,
        cond,
    ]


def _photo_jpeg(shot: ReportShot, cache: dict[int, bytes | None]) -> bytes | None:
    """The photo's privacy-safe copy reduced to MAX_SIDE, as JPEG bytes; None when it has none (yet)."""
    photo = shot.photo
    if photo.pk in cache:
        return cache[photo.pk]
    data = None
    if photo.image:
        try:
            with photo.image.open("rb") as fh, Image.open(io.BytesIO(fh.read())) as img:
                img.draft("RGB", (MAX_SIDE, MAX_SIDE))
                rgb = img.convert("RGB")
                rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
                buf = io.BytesIO()
                rgb.save(buf, format="JPEG", quality=80)
                data = buf.getvalue()
        except (OSError, ValueError) as exc:  # a missing or damaged file: the report still prints
            log.warning("photo %s cannot go into the report: %s", photo.pk, exc)
    cache[photo.pk] = data
    return data


def _shots_draw(pdf: _ReportPDF, section: ReportSection, cache: dict[int, bytes | None]) -> None:
    shots = section.shots
    if not shots:
        return
    gap = 4.0
    per_row = min(len(shots), 4)
    width = min(90.0, (CONTENT_W - gap * (per_row - 1)) / per_row)
    color = _hex_rgb(SEVERITY_COLORS.get(section.defect.severity_level, "#8a3ffc"))
    heights = [width * (s.photo.height or 3) / (s.photo.width or 4) for s in shots]
    row_h = max(heights) + 6
    if pdf.get_y() + row_h > pdf.h - 18:
        pdf.add_page()
    top = pdf.get_y()
    for i, (shot, height) in enumerate(zip(shots, heights)):
        x = MARGIN + i * (width + gap)
        data = _photo_jpeg(shot, cache)
        if data is not None:
            pdf.image(io.BytesIO(data), x=x, y=top, w=width, h=height)
        else:
            pdf.set_fill_color(225, 225, 225)
            pdf.rect(x, top, width, height, style="F")
            pdf.set_xy(x, top + height / 2 - 2)
            pdf.font(7)
            pdf.cell(width, 4, pdf.text_safe(_("no image yet")), align="C")
        # the box, in the photo's full-resolution upright pixels scaled onto the printed width
        scale = width / (shot.photo.width or 1)
        pdf.set_draw_color(*color)
        pdf.set_line_width(0.6)
        b = shot.box
        pdf.rect(x + b["x"] * scale, top + b["y"] * scale, max(0.5, b["w"] * scale), max(0.5, b["h"] * scale))
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.2)
        pdf.set_xy(x, top + height + 0.8)
        pdf.font(7)
        seen = shot.sighting.seen_at.astimezone(city_tz()).strftime("%Y-%m-%d %H:%M")
        pdf.cell(
            width,
            4,
            pdf.text_safe(f"{_('photo')} #{shot.photo.pk} · {seen} · {shot.sighting.confidence:.2f}"),
        )
    pdf.set_xy(MARGIN, top + row_h + 2)


def _section_draw(pdf: _ReportPDF, section: ReportSection, cache: dict[int, bytes | None]) -> None:
    d = section.defect
    if pdf.get_y() > pdf.h - 60:
        pdf.add_page()
    pdf.font(10.5, bold=True)
    road = (d.segment.name or _("unnamed road")) if d.segment_id else "-"
    pdf.set_text_color(*_hex_rgb(SEVERITY_COLORS.get(d.severity_level, "#8a3ffc")))
    pdf.cell(
        0,
        6,
        pdf.text_safe(
            f"#{d.pk} {_class_text(d.class_name)} · {_severity_text(d.severity_level, d.severity_label)}"
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(0, 0, 0)
    pdf.font(8.5)
    seen = f"{d.first_seen.astimezone(city_tz()):%Y-%m-%d} – {d.last_seen.astimezone(city_tz()):%Y-%m-%d}"
    parts = [
        road,
        f"{_('score')} {d.priority_score:.0f}",
        _status_text(section),
        f"{d.location.y:.6f}, {d.location.x:.6f}",
        ngettext("seen in %(n)s photo", "seen in %(n)s photos", d.sightings_count) % {"n": d.sightings_count},
        seen,
    ]
    if section.condition:
        parts.append(f"{_('condition index')} {section.condition.condition_index:.0f}")
    if d.synthetic:
        parts.append(_("synthetic demo data"))
    pdf.multi_cell(0, 4.5, pdf.text_safe(" · ".join(parts)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)
    _shots_draw(pdf, section, cache)


def report_filename(*, report: InspectionReport) -> str:
    """The PDF's file name: inspection-segment-<id>.pdf or inspection-<YYYY-MM-DD>.pdf."""
    if report.segment is not None:
        return f"inspection-segment-{report.segment.pk}.pdf"
    return f"inspection-{report.day.isoformat()}.pdf"


def report_pdf_render(
    *, report: InspectionReport, city_name: str = "", compress: bool = True, ttf: Path | None | str = "auto"
) -> bytes:
    """The report as PDF bytes. ``compress=False`` leaves the page streams readable (tests look for the rows);
    ``ttf`` overrides the font (None: Helvetica; "auto": ``font_path()``)."""
    font = font_path() if ttf == "auto" else (Path(ttf) if ttf else None)
    pdf = _ReportPDF(footer_text=f"{city_name} · {report.title}", ttf=font)
    pdf.set_compression(compress)
    pdf.set_title(report.title)
    pdf.set_subject(_("Road inspection report"))
    pdf.set_author(city_name or "city-ops")
    pdf.set_creator("city-ops road inspection")
    pdf.set_creation_date(report.generated)
    pdf.add_page()
    _heading_draw(pdf, report, city_name)
    if not report.sections:
        pdf.font(10)
        pdf.cell(0, 6, pdf.text_safe(_("No defects in this report.")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return bytes(pdf.output())
    _defects_table_draw(pdf, report)
    pdf.ln(5)
    cache: dict[int, bytes | None] = {}
    for section in report.sections:
        _section_draw(pdf, section, cache)
    return bytes(pdf.output())


def _heading_draw(pdf: _ReportPDF, report: InspectionReport, city_name: str) -> None:
    """The title, the summary line (city, time, counts) and, for a segment, its class, length and condition."""
    generated = report.generated.astimezone(city_tz())
    pdf.font(15, bold=True)
    pdf.multi_cell(0, 8, pdf.text_safe(report.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(9)
    pdf.set_text_color(90, 90, 90)
    n_defects, n_photos = len(report.sections), report.photo_count
    summary = [
        city_name,
        f"{_('generated')} {generated:%Y-%m-%d %H:%M}",
        ngettext("%(n)s defect", "%(n)s defects", n_defects) % {"n": n_defects},
        *_class_counts_text(report),
        ngettext("%(n)s photo", "%(n)s photos", n_photos) % {"n": n_photos},
    ]
    pdf.cell(0, 5, pdf.text_safe(" · ".join(p for p in summary if p)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    if report.segment is not None:
        seg = report.segment
        line = [seg.road_class, f"{seg.length_m:.0f} m"]
        if report.condition is not None:
            line.append(
                f"{_('condition index')} {report.condition.condition_index:.0f} "
                f"({report.condition.open_defects} {_('open defects')})"
            )
        pdf.font(10, bold=True)
        pdf.cell(0, 6, pdf.text_safe(" · ".join(line)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _defects_table_draw(pdf: _ReportPDF, report: InspectionReport) -> None:
    """One row per defect (TABLE_COLUMNS), its severity in the severity's colour."""
    pdf.font(8)
    headings = {
        "#": "#",
        "class": _("class"),
        "conf.": _("conf."),
        "size": _("size"),
        "severity": _("severity"),
        "score": _("score"),
        "status": _("status"),
        "road": _("road"),
        "cond.": _("cond."),
    }
    with pdf.table(
        col_widths=[w for _n, w, _a in TABLE_COLUMNS],
        width=CONTENT_W,
        align="LEFT",
        text_align=[a for _n, _w, a in TABLE_COLUMNS],
        line_height=4.2,
        padding=0.8,
        headings_style=FontFace(emphasis="B", fill_color=(235, 235, 235)),
    ) as table:
        head = table.row()
        for name, _w, _a in TABLE_COLUMNS:
            head.cell(pdf.text_safe(headings[name]))
        for section in report.sections:
            row = table.row()
            color = _hex_rgb(SEVERITY_COLORS.get(section.defect.severity_level, "#8a3ffc"))
            for (name, _w, _a), text in zip(TABLE_COLUMNS, defect_row(section)):
                style = FontFace(color=color, emphasis="B") if name == "severity" else None
                row.cell(pdf.text_safe(text), style=style)
