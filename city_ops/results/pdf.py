"""The results statement as a printable PDF (fpdf2, pure Python), A4 portrait, in the active language: the
period and whether it is a draft or an issued version (with its sha256), the total worth to the city, then
per agent its headlines (value, baseline, difference, money), a chart of its first headline over the
period, the notes that explain a missing baseline, and the runs it sums.

Text is set in DejaVu Sans (Debian's fonts-dejavu-core) with WenQuanYi Micro Hei (fonts-wqy-microhei) as
the fallback for the glyphs DejaVu lacks, Chinese above all: a zh-Hans statement, and any Chinese street
name or crew remark in an English one, prints. Both are looked up by path; a missing one is an installation
fault reported by name (`StatementFontMissing`), never a PDF with empty boxes where the text should be.
"""
from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from city_ops.console.templatetags.console import agent_label, stored_label

# (regular, bold) paths of the Latin font; the CJK fallback as (path, face number in a .ttc collection).
LATIN_FONTS = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
)
CJK_FONTS = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)
PAGE_W, MARGIN = 210.0, 14.0
CONTENT_W = PAGE_W - 2 * MARGIN
# (key, width in mm, alignment) of an agent's headline table; CONTENT_W in all
COLUMNS = (("result", 58, "L"), ("value", 31, "R"), ("baseline", 31, "R"), ("difference", 31, "R"),
           ("money", 31, "R"))
CHART_H = 26.0
GAIN, LOSS, MUTED, ACCENT = (26, 127, 55), (179, 38, 30), (95, 107, 120), (31, 111, 235)
# The statement's unit costs (its `unit_costs`, as the city set them in the admin or the documented defaults)
UNIT_COSTS = (("per_truck_km", gettext_lazy("truck-km")), ("per_truck_hour", gettext_lazy("truck-hour")),
              ("per_truck_day", gettext_lazy("truck-day")), ("per_bus_day", gettext_lazy("bus-day")),
              ("per_bus_km", gettext_lazy("bus-km")), ("per_crew_hour", gettext_lazy("crew-hour")),
              ("per_tonne_co2", gettext_lazy("tonne of CO2")), ("per_late_repair", gettext_lazy("late road repair")))
# The work rates beside them (the crew-hours a patrol, a review, a call-out takes), each after its figure.
WORK_RATES = (("patrol_km_per_crew_hour", gettext_lazy("km patrolled per crew-hour")),
              ("review_min_per_defect", gettext_lazy("minutes of review per defect found")),
              ("callout_crew_hours", gettext_lazy("crew-hours per flood call-out")))


class StatementFontMissing(RuntimeError):
    """A font the statement needs is not installed; the message names the Debian package."""


def fonts_find(*, latin_fonts=LATIN_FONTS, cjk_fonts=CJK_FONTS) -> tuple[tuple[str, str], tuple[str, int]]:
    """((regular, bold) Latin font, (CJK font, face number)): the first of each candidate list present."""
    latin = next((pair for pair in latin_fonts if Path(pair[0]).is_file()), None)
    if latin is None:
        raise StatementFontMissing("no DejaVu Sans for the statement PDF: install Debian's fonts-dejavu-core "
                                   f"(looked for {', '.join(p for p, _b in latin_fonts)})")
    cjk = next((font for font in cjk_fonts if Path(font[0]).is_file()), None)
    if cjk is None:
        raise StatementFontMissing("no Chinese font for the statement PDF: install Debian's fonts-wqy-microhei "
                                   f"(looked for {', '.join(p for p, _n in cjk_fonts)})")
    bold = latin[1] if Path(latin[1]).is_file() else latin[0]
    return (latin[0], bold), cjk


def number_text(value) -> str:
    """A figure as printed: thousands grouped, at most two decimals, '—' for none."""
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed_text(value) -> str:
    if value is None:
        return "—"
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return sign + number_text(abs(value))


def money_text(value, currency: str) -> str:
    return "—" if value is None else f"{signed_text(value)} {currency}"


def unit_text(unit: str) -> str:
    """A unit as stored (English, marked with gettext_noop where the figure is made) in the reader's language."""
    return _(unit) if unit else ""


def with_unit(text: str, unit: str) -> str:
    """A printed figure and its unit; no unit after a missing figure's dash."""
    return f"{text} {unit_text(unit)}" if unit and text != "—" else text


def note_text(note: dict | str) -> str:
    """A note in the reader's language: its template's translation filled with its arguments (a nested
    note said the same way); the English template where the translation does not fit its arguments."""
    if isinstance(note, str):
        return _(note) if note else note
    args = {k: note_text(v) if isinstance(v, dict) else v for k, v in note["args"].items()}
    if not args:
        return _(note["template"])
    try:
        return _(note["template"]) % args
    except (KeyError, ValueError, TypeError):
        return note["template"] % args


def notes_text(block: dict) -> list[str]:
    """An agent's notes in the reader's language (a statement issued before notes kept their templates: as
    issued, each translated where it is a fixed sentence)."""
    return [note_text(n) for n in block.get("notes_i18n") or block["notes"]]


def unit_costs_text(statement: dict) -> str:
    """The unit costs the money was reckoned at, each default marked as such, and the CO2 factors; '' when
    the statement does not state them."""
    costs = statement.get("unit_costs")
    if not costs:
        return ""
    defaults = set(costs.get("defaults", ()))

    def marked(key: str) -> str:
        return f" {_('(default)')}" if key in defaults else ""

    parts = [f"{label} {number_text(costs[key])}{marked(key)}" for key, label in UNIT_COSTS if key in costs]
    text = _("Unit costs in %(currency)s: %(costs)s.") % {"currency": statement["currency"],
                                                          "costs": " · ".join(parts)}
    rates = [f"{number_text(costs[key])} {label}{marked(key)}" for key, label in WORK_RATES if key in costs]
    if rates:
        text += " " + _("Work rates: %(rates)s.") % {"rates": " · ".join(rates)}
    if "co2_kg_per_truck_km" in costs:
        text += " " + _("CO2: %(truck)s kg per truck-km, %(bus)s kg per bus-km.") % {
            "truck": number_text(costs["co2_kg_per_truck_km"]), "bus": number_text(costs["co2_kg_per_bus_km"])}
    return text


def statement_filename(*, statement: dict, lang: str) -> str:
    """statement-<from>-<to>[-v<version>]-<lang>.pdf"""
    version = f"-v{statement['version']}" if statement.get("version") else ""
    return f"statement-{statement['from']}-{statement['to']}{version}-{lang}.pdf"


class _StatementPDF(FPDF):
    def __init__(self, *, footer_text: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        (regular, bold), (cjk, face) = fonts_find()
        self.add_font("Statement", "", regular)
        self.add_font("Statement", "B", bold)
        self.add_font("StatementCJK", "", cjk, collection_font_number=face)
        # CJK glyphs come from the fallback, bold text included (the CJK font has no bold face).
        self.set_fallback_fonts(["StatementCJK"], exact_match=False)
        self.footer_text = footer_text
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=16)

    def _render_styled_text_line(self, *args, **kwargs):
        # fpdf2 (2.8) selects the fallback font for a CJK run inside a line's text object and does not select
        # the main font back; the font outlives the text object, so the next line that starts in the main
        # font printed as garbage (Latin glyph numbers looked up in the CJK font). Re-select it on every line.
        try:
            return super()._render_styled_text_line(*args, **kwargs)
        finally:
            self.current_font_is_set_on_page = False

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font("Statement", "B" if bold else "", size)

    def line_out(self, height: float, text: str, *, color=(0, 0, 0)) -> None:
        self.set_text_color(*color)
        # left-aligned: a justified line of Chinese, which breaks between any two characters, would be stretched
        # across the page at the few spaces it has
        self.multi_cell(0, height, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-12)
        self.font(7.5)
        self.set_text_color(*MUTED)
        self.cell(CONTENT_W * 0.85, 5, self.footer_text, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.cell(CONTENT_W * 0.15, 5, f"{self.page_no()}/{{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def _tone_color(money):
    if money is None or money == 0:
        return None
    return GAIN if money > 0 else LOSS


def _issue_text(statement: dict) -> str:
    if statement.get("version"):
        return _("Issued, version %(n)s · sha256 %(sha)s") % {"n": statement["version"], "sha": statement["sha256"]}
    return _("Draft: not issued; the figures may still change.")


def _head_draw(pdf: _StatementPDF, statement: dict, city_name: str) -> None:
    pdf.font(16, bold=True)
    pdf.line_out(8, _("Results statement"))
    pdf.font(10)
    period = _("%(from)s to %(to)s (both days included)") % {"from": statement["from"], "to": statement["to"]}
    pdf.line_out(5.5, " · ".join(p for p in (city_name, period) if p), color=MUTED)
    pdf.font(8)
    pdf.line_out(4.5, _issue_text(statement), color=MUTED)
    if statement["synthetic"]:
        pdf.font(8.5, bold=True)
        pdf.line_out(5, _("Synthetic data: produced by the demo's simulated days, not measured in the city."),
                     color=LOSS)
    pdf.ln(2)
    pdf.font(12, bold=True)
    total = money_text(statement["total_money"], statement["currency"])
    pdf.line_out(7, _("Worth to the city over the period: %(money)s") % {"money": total},
                 color=_tone_color(statement["total_money"]) or (0, 0, 0))
    pdf.font(8)
    pdf.line_out(4.2, _("Each result is set against its counterfactual baseline: what the city would have done "
                        "without the agent on the same days, under the same demand and rules. Money is what the "
                        "difference is worth at the city's unit costs, positive when the city is better off."),
                 color=MUTED)
    if costs := unit_costs_text(statement):
        pdf.line_out(4.2, costs, color=MUTED)
    pdf.ln(3)


def headline_cells(headline: dict, currency: str) -> list[str]:
    """One headline's cells in COLUMNS order, as the PDF prints them."""
    unit = headline["unit"]
    return [stored_label(headline["label"]), with_unit(number_text(headline["value"]), unit),
            with_unit(number_text(headline["baseline"]), unit),
            with_unit(signed_text(headline["difference"]), unit), money_text(headline["money"], currency)]


def _table_draw(pdf: _StatementPDF, headlines: list[dict], currency: str) -> None:
    titles = {"result": _("Result"), "value": _("Value"), "baseline": _("Baseline"),
              "difference": _("Difference"), "money": _("Worth")}
    pdf.font(8.5)
    pdf.set_draw_color(200, 205, 212)
    with pdf.table(col_widths=[w for _k, w, _a in COLUMNS], width=CONTENT_W, align="LEFT",
                   text_align=[a for _k, _w, a in COLUMNS], line_height=4.6, padding=1,
                   borders_layout="HORIZONTAL_LINES",
                   headings_style=FontFace(emphasis="B", fill_color=(235, 238, 242))) as table:
        head = table.row()
        for key, _w, _a in COLUMNS:
            head.cell(titles[key])
        for h in headlines:
            row = table.row()
            for (key, _w, _a), text in zip(COLUMNS, headline_cells(h, currency)):
                color = _tone_color(h["money"]) if key == "money" else None
                row.cell(text, style=FontFace(color=color, emphasis="B") if color else None)
    pdf.set_draw_color(0, 0, 0)
    pdf.ln(2)


def _chart_series(block: dict) -> tuple[dict, list, list] | None:
    """The first headline with a daily value, its values and its baselines over the period's days."""
    daily = block.get("daily") or []
    for h in block["headlines"]:
        values = [day["values"].get(h["name"]) for day in daily]
        if sum(v is not None for v in values) >= 2:
            return h, values, [day["baselines"].get(h["name"]) for day in daily]
    return None


def _polyline(pdf: _StatementPDF, points: list[tuple[float, float] | None]) -> None:
    """Lines between consecutive points; a None (a day without a figure) breaks the line."""
    for a, b in zip(points, points[1:]):
        if a is not None and b is not None:
            pdf.line(a[0], a[1], b[0], b[1])


def _chart_draw(pdf: _StatementPDF, block: dict) -> None:
    """A line chart of the agent's first daily headline (solid) and its baseline (dashed) over the period."""
    found = _chart_series(block)
    if found is None:
        return
    headline, values, baselines = found
    if pdf.get_y() + CHART_H + 10 > pdf.h - 16:
        pdf.add_page()
    known = [v for v in values + baselines if v is not None]
    low, high = min(0.0, min(known)), max(known) or 1.0
    left, top, width = MARGIN + 14, pdf.get_y() + 5, CONTENT_W - 14
    step = width / max(1, len(values) - 1)

    def point(i, v):
        return None if v is None else (left + i * step, top + CHART_H * (1 - (v - low) / ((high - low) or 1)))

    pdf.font(7.5, bold=True)
    pdf.set_xy(MARGIN, top - 5)
    unit = f" ({unit_text(headline['unit'])})" if headline["unit"] else ""
    pdf.cell(CONTENT_W / 2, 4, stored_label(headline["label"]) + unit)
    pdf.font(6.5)
    pdf.set_text_color(*MUTED)
    pdf.cell(CONTENT_W / 2, 4, _("solid: the agent · dashed: the baseline"), align="R")
    pdf.set_draw_color(200, 205, 212)
    pdf.set_line_width(0.2)
    pdf.line(left, top + CHART_H, left + width, top + CHART_H)
    for v, y in ((high, top), (low, top + CHART_H - 3)):
        pdf.set_xy(MARGIN, y)
        pdf.cell(13, 3, number_text(v), align="R")
    dates = [day["date"] for day in block["daily"]]
    pdf.set_xy(left, top + CHART_H + 0.5)
    pdf.cell(width / 2, 3, dates[0])
    pdf.cell(width / 2, 3, dates[-1], align="R")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(*MUTED)
    with pdf.local_context(dash_pattern={"dash": 1.2, "gap": 1}):
        _polyline(pdf, [point(i, v) for i, v in enumerate(baselines)])
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.5)
    _polyline(pdf, [point(i, v) for i, v in enumerate(values)])
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.set_xy(MARGIN, top + CHART_H + 5)


def _learning_draw(pdf: _StatementPDF, weeks: list[dict]) -> None:
    """The agent's model error week by week, on one line (the fill model's, for sanitation)."""
    if not weeks:
        return
    cells = [f"{w['week_from'][5:]}: " + ("—" if w["forecast_mae"] is None else f"{w['forecast_mae'] * 100:.1f} %")
             for w in weeks]
    pdf.line_out(4.2, _("Fill-forecast error per week (day ahead, share of a bin):") + " " + " · ".join(cells))


def _agent_draw(pdf: _StatementPDF, name: str, block: dict, currency: str) -> None:
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    valued = [h["money"] for h in block["headlines"] if h["money"] is not None]
    worth = money_text(sum(valued), currency) if valued else _("not valued")
    pdf.font(12, bold=True)
    pdf.line_out(7, f"{agent_label(name)} · {worth}")
    pdf.set_draw_color(*ACCENT)
    pdf.line(MARGIN, pdf.get_y(), MARGIN + CONTENT_W, pdf.get_y())
    pdf.set_draw_color(0, 0, 0)
    pdf.ln(1.5)
    _table_draw(pdf, block["headlines"], currency)
    _chart_draw(pdf, block)
    pdf.font(8)
    _learning_draw(pdf, block.get("learning", []))
    for note in notes_text(block):
        pdf.line_out(4.2, f"•\u00a0{note}")  # a no-break space: the bullet never ends a line on its own
    runs = ", ".join(f"#{pk}" for pk in block["runs"]) or _("none in this period")
    pdf.font(7)
    pdf.line_out(3.8, _("Runs summed: %(runs)s") % {"runs": runs}, color=MUTED)
    pdf.ln(5)


def statement_pdf_render(*, statement: dict, city_name: str = "", compress: bool = True) -> bytes:
    """The statement as PDF bytes, in the active language. ``compress=False`` leaves the page streams readable.
    Raises StatementFontMissing when DejaVu Sans or the CJK font is not installed."""
    title = _("Results statement")
    pdf = _StatementPDF(footer_text=f"{city_name} · {title} {statement['from']} – {statement['to']}")
    pdf.set_compression(compress)
    pdf.set_title(f"{title} {statement['from']} – {statement['to']}")
    pdf.set_author(city_name or "city-ops")
    pdf.set_creator("city-ops results statement")
    pdf.add_page()
    _head_draw(pdf, statement, city_name)
    for name, block in statement["agents"].items():
        _agent_draw(pdf, name, block, statement["currency"])
    return bytes(pdf.output())
