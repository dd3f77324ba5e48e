"""The printable statement: it parses in English and in Chinese, carries the figures and the notes (Chinese
text included, in both languages), and renders to a page with text on it."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from django.utils import translation
from PIL import Image

from city_ops.results.pdf import (
    StatementFontMissing,
    fonts_find,
    headline_cells,
    money_text,
    number_text,
    statement_filename,
    statement_pdf_render,
)

from .statement_sample import statement_sample


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is missing: install Debian's poppler-utils (deploy/local/services.sh lists it)"
    return path


def _render(tmp_path, lang: str, **sample) -> tuple[str, bytes]:
    with translation.override(lang):
        body = statement_pdf_render(statement=statement_sample(**sample), city_name="Helsinki (demo)")
    pdf = tmp_path / f"statement-{lang}.pdf"
    pdf.write_bytes(body)
    text = subprocess.run([_poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text, body


def test_english_statement_prints_figures_notes_and_chinese_names(tmp_path):
    text, body = _render(tmp_path, "en")
    assert body.startswith(b"%PDF-")
    for expected in ("Results statement", "2026-11-01 to 2026-11-30", "Draft: not issued",
                     "Synthetic data", "+28,252 CNY", "Sanitation", "Buses", "Flood", "Road inspection",
                     "Distance driven", "2,436 km", "2,890 km", "−454 km", "+3,854 CNY", "−540 CNY",
                     "not valued", "#101, #102, #103, #104", "none in this period"):
        assert expected in text, expected
    # a crew's remark in Chinese prints in the English statement too (the CJK fallback font)
    assert "中山路" in text and "满溢" in text
    # the null baseline's reason is printed beside the figures it explains
    assert "Excess wait time has no baseline this period" in text
    assert "truck-km 4 (default) · truck-hour 125 · bus-day 1,200 (default)" in text
    assert "Fill-forecast error per week (day ahead, share of a bin): 11-01: 7.1 % · 11-29: —" in text


def test_chinese_statement_in_chinese_with_latin_figures_intact(tmp_path):
    text, _ = _render(tmp_path, "zh-hans", version=3)
    for expected in ("成果结算单", "2026-11-01 至 2026-11-30", "已签发，第 3 版", "合成数据",
                     "本期为城市创造的价值：+28,252 CNY", "环卫", "公交调度", "行驶里程", "基线", "差值", "价值",
                     "未计价", "汇总的运行：#101, #102, #103, #104"):
        assert expected in text, expected
    assert "Results statement" not in text
    assert "defects_found：本期没有任何运行报告此项" in text and "318 公里" in text  # notes and units too
    # Latin text after a Chinese run on the same page keeps its own font: the chart's axis labels and dates
    # (fpdf2 left the CJK font selected and printed them as garbage before _render_styled_text_line's fix)
    assert "96.3" in text and text.count("2026-11-30") >= 4


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_first_page_renders_with_ink_where_the_title_is(tmp_path, lang):
    _render(tmp_path, lang)
    subprocess.run([_poppler("pdftoppm"), "-r", "50", "-f", "1", "-l", "1", "-png",
                    str(tmp_path / f"statement-{lang}.pdf"), str(tmp_path / "page")], check=True)
    with Image.open(tmp_path / "page-1.png") as img:
        gray = img.convert("L")
        width, height = gray.size
        title = gray.crop((0, 0, width // 2, height // 12))
        assert title.getextrema()[0] < 80, "no dark title text at the top of page 1"
        dark = sum(gray.histogram()[:128]) / (width * height)
    assert 0.005 < dark < 0.2, f"page 1 is {dark:.1%} ink: blank or a black box"


def test_a_missing_chinese_font_is_named_not_printed_as_boxes():
    with pytest.raises(StatementFontMissing, match="fonts-wqy-microhei"):
        fonts_find(cjk_fonts=(("/nonexistent/wqy-microhei.ttc", 0),))
    with pytest.raises(StatementFontMissing, match="fonts-dejavu-core"):
        fonts_find(latin_fonts=(("/nonexistent/DejaVuSans.ttf", "/nonexistent/DejaVuSans-Bold.ttf"),))
    (regular, _bold), (cjk, face) = fonts_find()
    assert regular.endswith(".ttf") and cjk.endswith((".ttc", ".ttf")) and face == 0


def test_figures_are_printed_the_same_way_everywhere():
    assert [number_text(v) for v in (2436.5, 0.975, 3, 47.5, -0.0, None, 12345.678)] == [
        "2,436", "0.97", "3", "47.5", "0", "—", "12,346"]
    assert money_text(-540.0, "CNY") == "−540 CNY" and money_text(None, "CNY") == "—"
    assert money_text(0, "EUR") == "±0 EUR"
    ewt = statement_sample()["agents"]["bus"]["headlines"][2]
    assert headline_cells(ewt, "CNY") == ["Excess wait time", "1.7 min", "—", "—", "—"]
    assert statement_filename(statement=statement_sample(version=2), lang="zh-hans") == \
        "statement-2026-11-01-2026-11-30-v2-zh-hans.pdf"
