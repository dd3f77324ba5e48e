"""The Buses panel's live lists at city scale: warnings summarised (count, the worst few, the rest paged
behind "show all"), the headway table paged least regular first and filtered by route, bad paging input
answered with a page rather than an error."""
from __future__ import annotations

import math
import re

import pytest
from django.utils import timezone

from agents.bus.models import HeadwaySnapshot, HeadwayWarning
from agents.bus.selectors import headway_latest, warnings_open_ranked
from city_ops.core.testing import client_for

pytestmark = pytest.mark.django_db


def _picture(routes: int = 30) -> None:
    """One evaluation of `routes` routes x 2 directions (cv rising with the route number), and two open
    warnings per route: a bunched pair (20 s against 600 s on R00, milder on each later route) and a gap
    (twice the headway on R00, wider on each later route)."""
    now = timezone.now()
    HeadwaySnapshot.objects.bulk_create([
        HeadwaySnapshot(evaluated_at=now, route_id=f"R{r:02d}", direction_id=d, vehicles=5, headways_s=[300] * 4,
                        scheduled_headway_s=600, scheduled_source="feed", cv=r / 100 + d / 1000, grade="C")
        for r in range(routes) for d in (0, 1)])
    warnings = []
    for r in range(routes):
        for kind, headway in (("bunching", 20 + 10 * r), ("gap", 1200 + 60 * r)):
            warnings.append(HeadwayWarning(
                kind=kind, route_id=f"R{r:02d}", direction_id=0, leader=f"{r}-a-{kind}", follower=f"{r}-b-{kind}",
                headway_s=headway, scheduled_headway_s=600, scheduled_source="feed", action="watch",
                last_seen_at=now))
    HeadwayWarning.objects.bulk_create(warnings)


def test_warnings_rank_worst_first_whichever_way_off(users):
    _picture()
    ranked = list(warnings_open_ranked(user=users.dispatcher))
    assert len(ranked) == 60
    assert ranked[0].headway_s == 20  # 30 times too close: the worst
    offs = [abs(math.log(max(w.headway_s, 1) / w.scheduled_headway_s)) for w in ranked]
    assert offs == sorted(offs, reverse=True)
    assert {w.route_id for w in warnings_open_ranked(user=users.dispatcher, route="R07")} == {"R07"}
    table = list(headway_latest())
    assert [s.cv for s in table] == sorted((s.cv for s in table), reverse=True) and len(table) == 60


def test_panel_summarises_warnings_and_pages_the_table(users):
    _picture()
    c = client_for("dispatcher", users)
    html = c.get("/bus/").content.decode()
    assert re.search(r'id="warning-count">60<', html)
    head, _sep, rest = html.partition('id="warning-list-more"')
    assert head.count("data-warning=") == 5  # the worst five open
    assert rest.count("data-warning=") == 20  # one page of the other 55, behind "show all"
    assert "Show all 55 more warnings" in html
    assert html.count("<tr><td>R") == 20 and "Page 1 of 3" in html
    # The least regular route first; page 3 holds the last 20 rows.
    assert html.index("<tr><td>R29 / 1") < html.index("<tr><td>R29 / 0")
    last = c.get("/bus/?hpage=3").content.decode()
    assert "<tr><td>R00 / 0" in last and "Page 3 of 3" in last
    # Paging the warnings opens "show all" on that page; the worst five stay on top.
    more = c.get("/bus/?wpage=3").content.decode()
    assert '<details id="warnings-more" open>' in more
    assert more.partition('id="warning-list-more"')[2].count("data-warning=") == 15


def test_panel_filters_by_route_and_shrugs_off_bad_paging(users):
    _picture()
    c = client_for("dispatcher", users)
    html = c.get("/bus/?route=R07").content.decode()
    assert re.findall(r"<tr><td>(R\d\d) / ", html) == ["R07", "R07"]
    assert re.search(r'id="warning-count">2<', html) and "Route R07 only." in html
    assert "furthest off the timetable" not in html  # both shown: nothing to summarise
    assert "No live buses on route R99" in c.get("/bus/?route=R99").content.decode()
    for bad in ("hpage=abc", "hpage=-4", "wpage=999999", "route=" + "x" * 5000):
        page = c.get(f"/bus/?{bad}")
        assert page.status_code == 200, bad
    assert client_for("crew", users).get("/bus/?route=R07").status_code == 403
