"""The results statement through the copilot: the corpus's statement requests run (a read) and answer with
the statement's headlines per agent and a link to the Statement page; a crew is refused."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from bench.copilot import corpus_load
from city_ops.copilot.calls import ToolCall
from city_ops.copilot.executor import call_prepare
from city_ops.results.period import previous_month
from city_ops.results.selectors import statement_build

pytestmark = pytest.mark.django_db


def _statement_calls() -> list[dict]:
    return [c for part in ("tuned", "heldout") for case in corpus_load(part) for c in case["expect"]
            if c["tool"] == "results.statement"]


def test_the_corpus_statement_requests_are_done_with_the_headlines_and_the_page_link(users):
    calls = _statement_calls()
    assert len(calls) >= 8
    for call in calls:
        out = call_prepare(user=users.dispatcher, call=ToolCall(call["tool"], call["args"]))
        assert out.status == "done" and not out.writes, out.reason
        date_from, date_to = (dt.date.fromisoformat(out.result[k]) for k in ("from", "to"))
        if call["args"]:
            assert (out.result["from"], out.result["to"]) == (call["args"]["from"], call["args"]["to"])
        else:
            assert (date_from, date_to) == previous_month()
        full = statement_build(date_from=date_from, date_to=date_to)
        assert out.result["total_money"] == full["total_money"] and out.result["currency"] == full["currency"]
        assert set(out.result["agents"]) == set(full["agents"])
        for name, headlines in out.result["agents"].items():
            assert headlines == [{k: h[k] for k in ("name", "label", "value", "baseline", "difference", "unit",
                                                     "money")} for h in full["agents"][name]["headlines"]]
        url = f"/statement/?from={out.result['from']}&to={out.result['to']}"
        assert out.result["url"] == url and out.links[0]["url"] == url


@pytest.mark.parametrize("args, expect", [
    ({"from": "2026-11-03"}, ("2026-11-03", "2026-11-30")),
    ({"to": "2026-02-10"}, ("2026-02-01", "2026-02-10")),
])
def test_one_end_alone_gives_the_other_end_of_its_month(users, args, expect):
    out = call_prepare(user=users.dispatcher, call=ToolCall("results.statement", args))
    assert out.status == "done" and (out.result["from"], out.result["to"]) == expect


@pytest.mark.parametrize("args, reason", [
    ({"from": "2026-11-30", "to": "2026-11-01"}, "before it starts"),
    ({"from": "2025-01-01", "to": "2026-11-30"}, "at most 366 days"),
])
def test_a_period_the_statement_cannot_cover_fails_clearly(users, args, reason):
    out = call_prepare(user=users.dispatcher, call=ToolCall("results.statement", args))
    assert out.status == "failed" and reason in out.reason


def test_a_crew_is_refused_the_statement(users):
    out = call_prepare(user=users.crew, call=ToolCall("results.statement", {}))
    assert out.status == "refused" and "field_crew" in out.reason and "dispatcher" in out.reason
    assert out.result is None


def test_a_chinese_request_gets_the_headline_labels_in_chinese(users):
    with translation.override("zh-hans"):
        out = call_prepare(user=users.dispatcher, call=ToolCall("results.statement", {}))
    labels = {h["name"]: h["label"] for h in out.result["agents"]["sanitation"]}
    assert labels["km"] == "行驶里程" and "结算单" in out.summary
