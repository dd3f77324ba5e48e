"""POST /api/copilot/ and `manage.py ask`: a confirmation runs that conversation's pending proposal and
nothing else, a proposal expires, a conversation is its user's, and the command prints the one JSON object."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from city_ops.city.models import RoadClosure
from city_ops.copilot.models import Call
from city_ops.copilot.testing import answer, tool_calls
from city_ops.core.testing import client_for

pytestmark = pytest.mark.django_db


def _close(street: str) -> list[dict]:
    return [tool_calls(("city__closure_open", {"street": street, "reason": "burst main"})), answer("Proposed.")]


def _ask(client, **body):
    return client.post("/api/copilot/", body, content_type="application/json")


def test_confirm_runs_only_that_conversations_pending_proposal(users, testikatu, scripted_llm):
    client = client_for("dispatcher", users)
    scripted_llm.script = _close("Testikatu") + _close("Testitie")
    first = _ask(client, text="close Testikatu").json()
    second = _ask(client, text="close Testitie").json()
    assert first["calls"][0]["status"] == "proposed" and first["conversation"] != second["conversation"]
    assert first["calls"][0]["result"]["proposal"].startswith("Close Testikatu")

    resp = _ask(client, conversation=first["conversation"], confirm=True)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert [(c["tool"], c["status"]) for c in body["calls"]] == [("city.closure_open", "done")]
    assert body["engine"] == "llm" and body["links"][0]["url"].endswith(f"#closure-{RoadClosure.objects.get().pk}")
    assert set(RoadClosure.objects.get().segments.values_list("name", flat=True)) == {"Testikatu"}
    assert Call.objects.get(turn__conversation_id=second["conversation"]).status == "proposed"
    # confirming again runs nothing: the proposal is done
    again = _ask(client, conversation=first["conversation"], confirm=True)
    assert again.status_code == 400 and "no proposal waiting" in again.json()["detail"]
    assert RoadClosure.objects.count() == 1


def test_a_proposal_expires(users, testikatu, scripted_llm):
    client = client_for("dispatcher", users)
    scripted_llm.script = _close("Testikatu")
    conversation = _ask(client, text="close Testikatu").json()["conversation"]
    Call.objects.filter(status="proposed").update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    body = _ask(client, conversation=conversation, confirm=True).json()
    assert body["calls"][0]["status"] == "refused" and "expired" in body["calls"][0]["reason"]
    assert not RoadClosure.objects.exists()


def test_cancel_and_supersede(users, testikatu, scripted_llm):
    client = client_for("dispatcher", users)
    scripted_llm.script = _close("Testikatu") + _close("Testitie")
    conversation = _ask(client, text="close Testikatu").json()["conversation"]
    # a new request in the same conversation replaces the proposal: a confirmation runs the newest only
    _ask(client, text="no, close Testitie", conversation=conversation)
    assert [c.status for c in Call.objects.order_by("pk")] == ["refused", "proposed"]
    body = _ask(client, conversation=conversation, cancel=True).json()
    assert body["calls"][0]["status"] == "refused" and body["calls"][0]["reason"].startswith("Cancelled")
    assert not RoadClosure.objects.exists()


def test_another_users_conversation_is_not_found(users, testikatu, scripted_llm):
    scripted_llm.script = _close("Testikatu")
    conversation = _ask(client_for("dispatcher", users), text="close Testikatu").json()["conversation"]
    other = client_for("admin", users)
    assert _ask(other, conversation=conversation, confirm=True).status_code == 404
    assert _ask(other, conversation=conversation, text="and now?").status_code == 404
    assert not RoadClosure.objects.exists()


@pytest.mark.parametrize("body, field", [({}, "text"), ({"text": "  "}, "text"), ({"confirm": True}, "conversation"),
                                         ({"conversation": 1, "confirm": True, "cancel": True}, "non_field_errors")])
def test_bad_requests_say_why(users, body, field):
    resp = _ask(client_for("dispatcher", users), **body)
    assert resp.status_code == 400 and field in resp.json()


def test_the_answer_is_in_the_requests_language(users, scripted_llm, settings):
    """The grammar's composed answer (here after the model failed) follows the request's script."""
    settings.COPILOT_LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: a connection error
    body = _ask(client_for("dispatcher", users), text="今天有哪些积水警报？").json()
    assert body["engine"] == "grammar" and "failed" in body["fallback_reason"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["answer"]), body["answer"]


def _ask_command(*args) -> dict:
    out, err = io.StringIO(), io.StringIO()
    call_command("ask", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue())


def test_the_command_prints_one_json_object_and_executes_only_when_told(users, testikatu, scripted_llm):
    scripted_llm.script = _close("Testikatu")
    data = _ask_command("close Testikatu", "--user", "dispatcher", "--json")
    assert set(data) == {"engine", "calls", "answer", "links"}
    assert set(data["calls"][0]) == {"tool", "args", "writes", "status", "result", "reason"}
    assert data["calls"][0] | {"result": None} == {"tool": "city.closure_open", "writes": True, "status": "proposed",
                                                   "args": {"street": "Testikatu", "reason": "burst main"},
                                                   "result": None, "reason": ""}
    assert not RoadClosure.objects.exists()
    scripted_llm.script = _close("Testikatu")
    data = _ask_command("close Testikatu", "--user", "dispatcher", "--execute", "--json")
    closure = RoadClosure.objects.get()
    assert data["calls"][0]["status"] == "done" and data["calls"][0]["result"]["closure_id"] == closure.pk
    assert "closure #" in data["answer"]


def test_the_command_reports_a_fallback(users, settings):
    settings.COPILOT_LLM_BASE_URL = "http://127.0.0.1:9/v1"
    data = _ask_command("which flood alerts are open", "--user", "crew", "--json")
    assert data["engine"] == "grammar" and "fallback_reason" in data
