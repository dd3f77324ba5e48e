"""The Ask box in a real browser (Chromium, under the site's Content-Security-Policy): a dispatcher asks,
reads the proposal card in place, confirms, and the road is closed."""
from __future__ import annotations

import pytest

from city_ops.city.models import RoadClosure
from city_ops.copilot.testing import answer, tool_calls
from tests.fixtures import browser_login
from tests.test_browser import no_broker  # noqa: F401 (a fixture: closures publish to no shared broker)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ask_box_proposes_and_confirms_in_place(browser, live_server, users, testikatu, scripted_llm, no_broker):  # noqa: F811
    scripted_llm.script = [tool_calls(("city__closure_open", {"street": "Testikatu", "reason": "marathon"})),
                           answer("I proposed closing Testikatu for the marathon.")]
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "dispatcher", "pw-disp-123")
    page.goto(f"{live_server.url}/workorders/")
    page.fill("#ask-text", "close Testikatu for the marathon")
    page.press("#ask-text", "Enter")
    card = page.wait_for_selector("#ask-reply .proposal-card")
    assert "Close Testikatu (3 segments)" in card.inner_text()
    assert "I proposed closing Testikatu" in page.inner_text("#ask-reply .ask-answer")
    assert not RoadClosure.objects.exists()
    page.click("#ask-reply [data-decision=confirm]")
    page.wait_for_selector("#ask-reply .call.status-done")
    closure = RoadClosure.objects.get()
    link = page.get_attribute("#ask-reply .ask-links a", "href")
    assert link.endswith(f"#closure-{closure.pk}")
    # the link opens the map on that closure
    page.goto(f"{live_server.url}{link}")
    assert "marathon" in page.wait_for_selector(".leaflet-popup-content").inner_text()
    assert not errors
