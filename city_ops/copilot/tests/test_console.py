"""The console: the Ask box is on dispatchers' and crews' pages; without script, asking leads to the
conversation page with the proposal card, and Confirm runs it."""
from __future__ import annotations

import pytest

from city_ops.city.models import RoadClosure
from city_ops.copilot.models import Conversation
from city_ops.copilot.testing import answer, tool_calls
from city_ops.core.testing import client_for

pytestmark = pytest.mark.django_db


def test_the_ask_box_is_on_dispatcher_and_crew_pages(users):
    assert b'id="ask-box"' in client_for("dispatcher", users).get("/workorders/").content
    crew_page = client_for("crew", users).get("/my-orders/").content.decode()
    assert 'id="ask-box"' in crew_page and "copilot/ask.js" in crew_page
    assert b'id="ask-box"' not in client_for("anonymous", users).get("/accounts/login/").content


def test_ask_confirm_in_the_console_without_script(users, testikatu, scripted_llm):
    scripted_llm.script = [tool_calls(("city__closure_open", {"street": "Testikatu", "reason": "parade"})),
                           answer("Proposed closing Testikatu.")]
    client = client_for("dispatcher", users)
    resp = client.post("/copilot/ask/", {"text": "close Testikatu for the parade"})
    conversation = Conversation.objects.get(user=users.dispatcher)
    assert resp.status_code == 302 and resp["Location"] == f"/copilot/{conversation.pk}/"
    page = client.get(resp["Location"]).content.decode()
    assert "proposal-card" in page and "Close Testikatu (3 segments)" in page and 'id="proposal-confirm"' in page
    assert not RoadClosure.objects.exists()
    # another user cannot see it, nor confirm it
    assert client_for("admin", users).get(resp["Location"]).status_code == 404
    assert client_for("admin", users).post(f"/copilot/{conversation.pk}/decide/", {"decision": "confirm"}).status_code == 404
    resp = client.post(f"/copilot/{conversation.pk}/decide/", {"decision": "confirm"})
    assert resp.status_code == 302 and RoadClosure.objects.count() == 1
    page = client.get(resp["Location"]).content.decode()
    assert 'id="proposal-confirm"' not in page and f"#closure-{RoadClosure.objects.get().pk}" in page


def test_the_copilots_catalogue_is_complete_and_compiled():
    """The copilot keeps its own zh-Hans catalogue (city_ops/copilot/locale): every string translated, the .mo
    current, by the same check as the console's."""
    import gettext
    from pathlib import Path

    from tests.test_i18n import _po_entries

    folder = Path(__file__).resolve().parents[1] / "locale" / "zh_Hans" / "LC_MESSAGES"
    entries = _po_entries(folder / "django.po")
    assert len(entries) >= 70 and not [m for m, t in entries if not t]
    with (folder / "django.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    assert all(compiled.gettext(m) != m for m, _ in entries if "\\" not in m)


def test_a_proposal_reads_in_the_active_language(users, testikatu):
    from django.utils import translation

    from city_ops.copilot.calls import ToolCall
    from city_ops.copilot.executor import call_prepare

    with translation.override("zh-hans"):
        out = call_prepare(user=users.dispatcher, call=ToolCall("city.closure_open", {"street": "Testikatu",
                                                                                        "reason": "游行"}))
    assert out.result["proposal"].startswith("封闭 Testikatu（3 个路段）直至解除，原因：游行")
