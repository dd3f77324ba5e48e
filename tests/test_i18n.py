"""The console speaks English and Simplified Chinese, chosen per user (their profile), switched from the
top bar; the translation catalogue is complete and compiled."""
from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

from city_ops.core.models import UserProfile
from city_ops.core.testing import client_for

pytestmark = pytest.mark.django_db
LOCALE = Path(settings.LOCALE_PATHS[0]) / "zh_Hans" / "LC_MESSAGES"


def _set_language(user, code: str) -> None:
    UserProfile.objects.update_or_create(user=user, defaults={"language": code})


def test_chinese_user_sees_chinese_map(users):
    _set_language(users.dispatcher, "zh-hans")
    page = client_for("dispatcher", users).get("/")
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans">' in html
    for word in ("地图", "图层", "道路", "封路", "行政区", "智能体运行", "成果", "工单", "图例"):
        assert word in html, word
    assert ">Layers<" not in html and ">Agent runs<" not in html
    # the browser's Accept-Language does not override the user's choice
    en_browser = client_for("dispatcher", users).get("/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert "图层" in en_browser.content.decode()


def test_switching_language_from_the_top_bar(users):
    c = client_for("dispatcher", users)
    assert ">Layers<" in c.get("/").content.decode()
    resp = c.post("/settings/language/", {"language": "zh-hans", "next": "/runs/"})
    assert resp.status_code == 302 and resp["Location"] == "/runs/"
    assert UserProfile.objects.get(user=users.dispatcher).language == "zh-hans"
    assert "启动运行" in c.get("/runs/").content.decode()
    # and back
    c.post("/settings/language/", {"language": "en", "next": "/"})
    html = c.get("/").content.decode()
    assert ">Layers<" in html and "图层" not in html.replace('value="zh-hans"', "")
    # an unknown language is ignored, not stored
    c.post("/settings/language/", {"language": "xx", "next": "/"})
    assert UserProfile.objects.get(user=users.dispatcher).language == "en"


def test_crew_pages_and_messages_in_chinese(users):
    from django.contrib.gis.geos import Point

    from city_ops.workorders.services import work_order_create

    _set_language(users.crew, "zh-hans")
    order, _ = work_order_create(title="Pothole", location=Point(24.94, 60.17), assignee=users.crew)
    c = client_for("crew", users)
    html = c.get("/my-orders/").content.decode()
    assert "我的工单" in html and "开始作业" in html and "已指派" in html
    # a refused step explains itself in the user's language too
    resp = c.post(f"/workorders/{order.pk}/photo/", {"kind": "after"}, follow=True)
    assert "照片未被接受" in resp.content.decode()
    assert "无权访问" in c.get("/runs/").content.decode()


@pytest.mark.parametrize(("url", "chinese", "english", "hooks"), [
    ("/flood/", ("<title>防汛", "生效中的预警", "防汛分区", "水文过程线"), ("Active alerts", "Flood zones"),
     ('id="flood-map"', 'id="hydrograph"')),
    ("/bus/", ("<title>公交调度", "行车间隔预警", "行车间隔均衡度", "GTFS 数据源"), ("Headway warnings", "GTFS feeds"),
     ('id="warning-list"', 'id="feed-upload"')),
    ("/roads/", ("<title>道路巡检", "病害分布（按严重程度）", "维修队列", "车载摄像巡检"), ("Repair queue", "Camera runs"),
     ('id="roads-map"', 'id="report-link"')),
])
def test_agent_panels_in_chinese(users, url, chinese, english, hooks):
    """A zh-hans dispatcher reads the flood, bus and roads panels in Chinese; the ids the scripts hook
    into are the same in every language."""
    _set_language(users.dispatcher, "zh-hans")
    page = client_for("dispatcher", users).get(url)
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Language"] == "zh-hans"
    for word in chinese:
        assert word in html, word
    for word in english:
        assert word not in html, word
    for hook in hooks:
        assert hook in html, hook


def test_login_page_follows_the_browser_then_the_language_cookie(db):
    from django.test import Client

    assert "用户名" in Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert "Username" in Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    c = Client()
    c.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert "登录" in c.get("/accounts/login/").content.decode()


def _po_entries(po: Path) -> list[tuple[str, str]]:
    """(msgid, first msgstr) pairs of a .po file, header left out; a msgid with a context is given as
    "context\x04msgid", the key gettext files it under."""
    entries, field, cur = [], None, {}
    for line in po.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith(("msgctxt ", "msgid ", "msgid_plural ", "msgstr ", "msgstr[0] ")):
            field = line.split(" ", 1)[0]
            if field in ("msgctxt", "msgid") and "msgid" in cur:
                entries.append(cur)
                cur = {}
            cur[field] = line.split(" ", 1)[1][1:-1]
        elif line.startswith('"') and field:
            cur[field] += line[1:-1]
        elif not line.strip():
            field = None
    if "msgid" in cur:
        entries.append(cur)
    return [((f"{e['msgctxt']}\x04" if "msgctxt" in e else "") + e["msgid"],
             e.get("msgstr", e.get("msgstr[0]", ""))) for e in entries if e["msgid"]]


def test_catalogue_is_complete_and_compiled():
    """Every console string has a Chinese translation, and the committed .mo holds them all (so nobody
    forgot compilemessages after editing the .po)."""
    po, mo = LOCALE / "django.po", LOCALE / "django.mo"
    entries = _po_entries(po)
    assert len(entries) >= 100
    assert not [m for m, t in entries if not t], "untranslated strings"
    assert not re.search(r"^#,.*\bfuzzy\b", po.read_text(encoding="utf-8"), re.MULTILINE), "fuzzy entries"
    with mo.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    stale = [m for m, _ in entries
             if compiled.gettext(m.encode().decode("unicode_escape").encode("latin-1").decode()) ==
             m.encode().decode("unicode_escape").encode("latin-1").decode()]
    assert not stale, f"not in django.mo (run compilemessages): {stale[:5]}"


def test_stored_kpi_and_agent_labels_shown_in_the_users_language(users):
    """KPI labels are stored in English (a report reads the same whatever language started the run) and shown
    translated: the agents mark them with gettext_noop, the console translates them per request."""
    from agents.runtime.models import AgentRun, RunKpi
    from agents.runtime.services import agent_run_create

    run, _ = agent_run_create(agent="bus", reason="test", enqueue=False)
    AgentRun.objects.filter(pk=run.pk).update(status="succeeded")
    RunKpi.objects.create(run=run, agent="bus", run_date=run.run_date, name="trips", label="Trips planned", value=12)
    RunKpi.objects.create(run=run, agent="bus", run_date=run.run_date, name="own", label="A label nobody translated",
                          value=1)
    _set_language(users.dispatcher, "zh-hans")
    html = client_for("dispatcher", users).get("/runs/?agent=bus").content.decode()
    assert "计划车次" in html and "Trips planned" not in html
    assert "A label nobody translated" in html  # shown as stored, not dropped
    assert "公交调度" in html  # the agent's name, translated in the top bar
