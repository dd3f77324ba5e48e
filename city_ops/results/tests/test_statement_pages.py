"""The Statement page, its PDF and the Results page's lead, through the real views and the real selector
(`city_ops.results.selectors.statement_build`) on a database without runs: who may open them, the
languages, bad periods refused with the reason."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import pytest

from city_ops.core.models import UserProfile
from city_ops.core.testing import client_for

from .statement_sample import sanitation_days_seed

pytestmark = pytest.mark.django_db
AGENTS = ("sanitation", "bus", "flood", "roads")


def test_dispatchers_and_admins_open_the_statement_crews_do_not(users):
    for role in ("dispatcher", "admin"):
        resp = client_for(role, users).get("/statement/?from=2026-11-01&to=2026-11-30")
        html = resp.content.decode()
        assert resp.status_code == 200, role
        for agent in AGENTS:
            assert f'id="headlines-{agent}"' in html and f'id="table-{agent}"' in html, agent
        assert 'id="statement-csv"' in html and 'id="statement-pdf-zh-hans"' in html
        assert '<a href="/statement/" class="active">Statement</a>' in html  # in the top bar, marked
    assert client_for("crew", users).get("/statement/").status_code == 403
    assert client_for("crew", users).get("/statement/pdf/").status_code == 403
    assert client_for("anonymous", users).get("/statement/").status_code == 302


def test_statement_in_chinese(users):
    UserProfile.objects.update_or_create(user=users.dispatcher, defaults={"language": "zh-hans"})
    html = client_for("dispatcher", users).get("/statement/?month=2026-11").content.decode()
    for word in ("结算单", "逐日", "结算明细", "合计", "环卫", "公交调度", "防汛", "道路巡检"):
        assert word in html, word
    assert ">Statement<" not in html


def test_page_shows_the_stored_runs_it_sums(users):
    """Two nightly sanitation runs of November: their distance summed against the summed baselines, the
    runs linked, a day each on the chart."""
    ids = sanitation_days_seed(days=[dt.date(2026, 11, 3), dt.date(2026, 11, 4)])
    html = client_for("dispatcher", users).get("/statement/?month=2026-11").content.decode()
    card = html.split('id="headlines-sanitation"')[1].split("</article>")[0]
    assert "Distance driven" in card and "80 km" in card and "−20 vs. 100" in card
    for pk in ids:
        assert f'href="/api/agents/runs/{pk}/">#{pk}</a>' in html
    charts = json.loads(html.split('<script id="statement-charts" type="application/json">')[1].split("</script>")[0])
    sanitation = next(c for c in charts if c["id"] == "statement-chart-sanitation")
    assert sanitation["dates"] == ["2026-11-03", "2026-11-04"]
    km = next(s for s in sanitation["series"] if s["name"] == "km")
    assert km["values"] == [40.0, 40.0] and km["baselines"] == [50.0, 50.0]


@pytest.mark.parametrize(("query", "reason"), [
    ("from=2026-11-01", "Give both dates"),
    ("from=2026-11-30&to=2026-11-01", "before it starts"),
    ("month=November", "not a month in the form YYYY-MM"),
])
def test_a_bad_period_is_refused_with_the_reason(users, query, reason):
    c = client_for("dispatcher", users)
    page = c.get(f"/statement/?{query}")
    assert page.status_code == 400 and reason in page.content.decode()
    pdf = c.get(f"/statement/pdf/?{query}")
    assert pdf.status_code == 400 and reason in pdf.content.decode()
    assert c.get("/statement/pdf/?month=2026-11&lang=fi").status_code == 400


@pytest.mark.parametrize(("lang", "title"), [("en", "Results statement"), ("zh-hans", "成果结算单")])
def test_pdf_in_either_language(users, tmp_path, lang, title):
    resp = client_for("dispatcher", users).get(f"/statement/pdf/?from=2026-11-01&to=2026-11-30&lang={lang}")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert f'filename="statement-2026-11-01-2026-11-30-{lang}.pdf"' in resp["Content-Disposition"]
    (tmp_path / "s.pdf").write_bytes(resp.content)
    text = subprocess.run([shutil.which("pdftotext"), str(tmp_path / "s.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert title in text and "2026-11-01" in text


def test_results_page_leads_with_this_months_statement(users):
    html = client_for("dispatcher", users).get("/results/").content.decode()
    lead = html.split('id="statement-lead"')[1].split("</section>")[0]
    assert 'href="/statement/"' in lead and 'id="statement-total"' in lead
    for agent in AGENTS:
        assert f'id="headlines-{agent}"' in lead, agent
    assert html.index('id="statement-lead"') < html.index('id="results-table"')
