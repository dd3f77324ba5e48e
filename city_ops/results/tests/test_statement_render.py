"""The Statement page's template and its period, from a statement dict (the selector's output): headlines
on top with the synthetic mark, a chart per agent fed through json_script, the table with the notes where a
baseline is missing and links to the runs; English and Chinese."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import translation

from city_ops.results.pages import PeriodError, _period_links, period_default, period_parse, statement_context

from .statement_sample import statement_sample

pytestmark = pytest.mark.django_db


def _page(users, statement: dict, lang: str = "en") -> str:
    request = RequestFactory().get("/statement/")
    request.user = users.dispatcher
    date_from, date_to = dt.date.fromisoformat(statement["from"]), dt.date.fromisoformat(statement["to"])
    with translation.override(lang):
        return render_to_string("results/statement.html", {
            **statement_context(statement), **_period_links(date_from, date_to),
            "chart_labels": {"value": "With the agent", "baseline": "Baseline"}}, request=request)


def _json_script(html: str, element_id: str):
    return json.loads(html.split(f'<script id="{element_id}" type="application/json">')[1].split("</script>")[0])


def test_headlines_table_notes_and_runs(users):
    html = _page(users, statement_sample())
    for agent in ("sanitation", "bus", "flood", "roads"):
        assert f'id="headlines-{agent}"' in html and f'id="table-{agent}"' in html, agent
    assert 'id="statement-total"' in html and "+28,252 CNY" in html
    # the unit costs the money is reckoned at, the documented defaults marked as such
    assert ("Unit costs in CNY: truck-km 4 (default) · truck-hour 125 · bus-day 1,200 (default) · "
            "crew-hour 80 (default) · tonne of CO2 60 (default). Work rates: 2.5 km patrolled per crew-hour "
            "(default) · 3 minutes of review per defect found. CO2: 0.9 kg per truck-km, 1.05 kg per bus-km." in html)
    assert ("inspection_crew_hours: the baseline is a manual patrol of the same km at 2.5 (the documented default) "
            "km per crew-hour") in html
    assert "synthetic data" in html and ">draft<" in html
    # a headline without a baseline says so on top, and its reason is in the table's notes
    bus = html.split('id="headlines-bus"')[1].split("</article>")[0]
    assert "Excess wait time" in bus and "no baseline" in bus
    assert "no vehicle positions were recorded without holding advice" in html
    assert "Bin 88 on 中山路" in html
    # what the fill model learned, week by week (a week without forecasts is a dash, not 0 %)
    learning = html.split('class="statement-learning"')[1].split("</ul>")[0]
    assert "2026-11-01 – 2026-11-07: 7.1 %" in learning and "(840 forecasts)" in learning
    assert "2026-11-29 – 2026-11-30: —" in learning and "(0 forecasts)" in learning
    # a figure no run reported is a bare dash everywhere, never "— defects"
    defects = html.split("<td>Defects found</td>")[1].split("</tr>")[0]
    assert defects.count(">—<") == 4 and "— defects" not in html
    # every figure traces to its runs
    for pk in (101, 104, 201, 301):
        assert f'href="/api/agents/runs/{pk}/">#{pk}</a>' in html
    assert "+3,854 CNY" in html and "−540 CNY" in html and 'class="num money loss"' in html
    # CSV from the API and a PDF in each language, for the same period
    assert 'href="/api/results/statement/?from=2026-11-01&amp;to=2026-11-30&amp;format=csv"' in html
    assert 'href="/statement/pdf/?from=2026-11-01&amp;to=2026-11-30&amp;lang=zh-hans"' in html
    assert 'href="?month=2026-10"' in html and 'href="?month=2026-12"' in html


def test_one_chart_per_agent_with_daily_figures_and_no_inline_script(users):
    statement = statement_sample(days=5)
    html = _page(users, statement)
    charts = {c["id"]: c for c in _json_script(html, "statement-charts")}
    assert set(charts) == {"statement-chart-sanitation", "statement-chart-bus", "statement-chart-roads"}
    assert 'id="chart-card-flood"' in html and "No daily figures in this period." in html
    sanitation = charts["statement-chart-sanitation"]
    assert sanitation["dates"] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
    distance = sanitation["series"][0]
    assert distance["label"] == "Distance driven" and distance["unit"] == "km"
    assert distance["values"][2] is None and distance["baselines"] == [96.3] * 5  # a day without a run: a gap
    # a headline with no daily figures (a ratio the selector does not break down by day) has no series
    assert "km_per_bin" not in {s["name"] for s in sanitation["series"]}
    ewt = charts["statement-chart-bus"]["series"][2]
    assert ewt["name"] == "ewt_min" and ewt["baselines"] == []  # no baseline line to draw
    # each chart has its headline picker; scripts are files (CSP), data only in json_script
    assert html.count('<select data-chart="statement-chart-') == 3
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in s or 'type="application/json"' in s for s in scripts), scripts
    assert "results/statement.js" in html and "vendor/chartjs/chart.umd.js" in html


def test_issued_statement_in_chinese(users):
    html = _page(users, statement_sample(version=2, synthetic=False), lang="zh-hans")
    for expected in ("结算单", "已签发，第 2 版", "环卫", "公交调度", "无基线", "逐日", "结算明细", "合计",
                     "汇总的运行", "基线", "差值", "价值", "上个月"):
        assert expected in html, expected
    assert "合成数据" not in html and "synthetic data" not in html
    assert "单位成本（CNY）：车公里 4 （默认值） · 车小时 125" in html
    assert "工作定额：2.5 每班组工时巡查公里数 （默认值） · 3 每处病害的审核分钟数。" in html
    # the notes and units in Chinese: made in code from templates, said in the reader's language
    assert "defects_found：本期没有任何运行报告此项" in html and "no run of the period reported it" not in html
    assert ("基线为以每班组工时2.5（文档所载默认值）公里人工巡查相同里程；数值为调度员逐一审核发现的病害，"
            "每处3（本市设定）分钟") in html
    assert "318 公里" in html and "52 小时" in html and " km<" not in html
    assert "sha256 <code>" + "3f7a" * 16 in html and ">草稿<" not in html
    draft = _page(users, statement_sample(), lang="zh-hans")
    assert ">草稿<" in draft and "合成数据" in draft


@pytest.mark.parametrize(("params", "today", "expected"), [
    ({}, dt.date(2026, 12, 7), (dt.date(2026, 12, 1), dt.date(2026, 12, 6))),
    ({}, dt.date(2026, 12, 1), (dt.date(2026, 11, 1), dt.date(2026, 11, 30))),
    ({"month": "2028-02"}, dt.date(2026, 12, 7), (dt.date(2028, 2, 1), dt.date(2028, 2, 29))),
    ({"from": "2026-11-09", "to": "2026-12-06", "month": "2026-01"}, dt.date(2026, 12, 7),
     (dt.date(2026, 11, 9), dt.date(2026, 12, 6))),
    ({"from": "2026-11-09", "to": "2026-11-09"}, dt.date(2026, 12, 7), (dt.date(2026, 11, 9), dt.date(2026, 11, 9))),
])
def test_period(params, today, expected):
    assert period_parse(params, today=today) == expected
    assert period_default(dt.date(2027, 1, 1)) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))


@pytest.mark.parametrize(("params", "reason"), [
    ({"from": "2026-11-01"}, "Give both dates"),
    ({"from": "2026-11-01", "to": "30.11.2026"}, "30.11.2026 is not a date in the form YYYY-MM-DD"),
    ({"month": "2026-13"}, "2026-13 is not a month in the form YYYY-MM"),
    ({"from": "2026-11-30", "to": "2026-11-01"}, "The period ends (2026-11-01) before it starts (2026-11-30)"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "at most 366 days"),
])
def test_bad_period_says_why(params, reason):
    with pytest.raises(PeriodError, match=re.escape(reason)):
        period_parse(params, today=dt.date(2026, 12, 7))
