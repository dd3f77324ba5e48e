"""Copilot benchmark: how often each engine turns a dispatcher's request into the right tool calls, and how
fast, on the labelled corpus in bench/copilot_corpus/ (see its README for the labelling conventions).

    .venv/bin/python bench/copilot.py [--part tuned|heldout] [--scripted] [--user NAME] [--failures] [--json]

Per engine and per part of the corpus (`tuned`: what the grammar was developed against; `heldout`: written
before the grammar and never tuned on): tool accuracy (the requests whose tools are all right), argument
accuracy (the requests whose calls are exactly right, tools and arguments), latency p50/p95, and wrong calls
that are writes. Engines:
- `grammar`, always: the parser alone.
- `llm`, when COPILOT_LLM_BASE_URL is set: each request through the copilot's LLM loop against that endpoint
  as a dispatcher of the local database (`--user`, default `dispatcher`): the calls the model makes go
  through the executor, so its reads run (they are reads) and its writes are only proposed, never run.
- `llm-scripted`, with `--scripted`: the same loop against the test suite's scripted endpoint
  (city_ops/copilot/testing.py), which answers each request with the corpus's own expected calls. Its
  accuracy is not a model's: it measures the loop's plumbing (wire names, arguments, the executor) and its
  overhead (two HTTP rounds, the prompt, the reads the calls run) - the floor under any real model's latency.
Then the write check: every call each engine made, through the executor as that user; a write must come back
proposed (or refused/failed by its checks), never done. Reads street, district, zone and sensor names from the
local database (make demo); writes nothing (the check's savepoint is rolled back as well).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CORPUS = Path(__file__).resolve().parent / "copilot_corpus"
PARTS = ("tuned", "heldout")

# An engine takes the request and the city's today and returns [{"tool", "args"}, ...]; an engine that went
# through the executor adds each call's "writes" and "status".
Engine = Callable[[str, dt.date], list[dict]]


def corpus_load(part: str) -> list[dict]:
    path = CORPUS / f"{part}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _key(call: dict) -> str:
    return json.dumps({"tool": call["tool"], "args": call.get("args", {})}, sort_keys=True, ensure_ascii=False)


def write_tools() -> frozenset[str]:
    """The tools that change something, as the registry declares them (the copilot proposes them and runs
    them only once confirmed)."""
    from city_ops.copilot.registry import tools_by_name

    return frozenset(name for name, tool in tools_by_name().items() if tool.writes)


def case_score(expect: list[dict], got: list[dict]) -> dict:
    """One request: tools right (same tools, any order), calls right (same calls exactly), and the got
    calls that are writes and not expected."""
    expected_keys = {_key(c) for c in expect}
    return {
        "tools_ok": sorted(c["tool"] for c in expect) == sorted(c["tool"] for c in got),
        "calls_ok": sorted(map(_key, expect)) == sorted(map(_key, got)),
        "wrong_writes": sum(1 for c in got if c["tool"] in write_tools() and _key(c) not in expected_keys),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def corpus_run(engine: Engine, cases: list[dict]) -> dict:
    """Accuracy and latency of one engine on one part; `failures` lists the requests it got wrong."""
    scores, latencies, failures, calls = [], [], [], []
    for case in cases:
        started = time.perf_counter()
        got = engine(case["text"], dt.date.fromisoformat(case["today"]))
        latencies.append((time.perf_counter() - started) * 1000)
        calls += got
        score = case_score(case["expect"], got)
        scores.append(score)
        if not score["calls_ok"]:
            failures.append({"text": case["text"], "expect": case["expect"], "got": got})
    n = len(cases)
    return {
        "requests": n,
        "tool_accuracy": round(sum(s["tools_ok"] for s in scores) / n, 3),
        "args_accuracy": round(sum(s["calls_ok"] for s in scores) / n, 3),
        "wrong_writes": sum(s["wrong_writes"] for s in scores),
        "latency_ms_p50": round(statistics.median(latencies), 2),
        "latency_ms_p95": round(_percentile(latencies, 0.95), 2),
        "failures": failures,
        "calls": calls,
    }


def grammar_engine(text: str, today: dt.date) -> list[dict]:
    from city_ops.copilot.grammar import grammar_parse

    return [{"tool": c.tool, "args": c.args} for c in grammar_parse(text=text, today=today)]


def llm_engine(user) -> Engine:
    """The copilot's LLM loop as `user`, against the endpoint configured now: the calls the model made (each
    through the executor: reads run, writes proposed). An endpoint failure is a request with no calls."""
    from django.utils import translation

    from city_ops.copilot.answer import request_language
    from city_ops.copilot.llm import LlmUnavailable, llm_run

    def engine(text: str, today: dt.date) -> list[dict]:
        language = request_language(text)
        with translation.override(language):
            try:
                outcomes, _answer = llm_run(user=user, text=text, today=today, language=language)
            except LlmUnavailable as exc:
                print(f"llm: {exc}: {text}", file=sys.stderr)
                return []
        return [{"tool": o.tool, "args": o.args, "writes": o.writes, "status": o.status} for o in outcomes]

    return engine


def scripted_engine(model, user, cases: list[dict]) -> Engine:
    """The LLM loop against the scripted endpoint `model` (city_ops.copilot.testing.ScriptedModel, already
    configured as the copilot's endpoint), which answers each request with its expected calls and then a
    sentence."""
    from city_ops.copilot.testing import answer, tool_calls
    from city_ops.copilot.tools import wire_name

    expected = {case["text"]: case["expect"] for case in cases}
    run = llm_engine(user)

    def engine(text: str, today: dt.date) -> list[dict]:
        calls = [(wire_name(c["tool"]), c.get("args", {})) for c in expected[text]]
        model.script[:] = ([tool_calls(*calls)] if calls else []) + [answer("done")]
        return run(text, today)

    return engine


def writes_check(calls: list[dict], user) -> dict:
    """Every call through the executor as `user` (a call that already went through it keeps its status):
    how the writes came back. `done` must be 0: a write runs only once the user confirms. The savepoint is
    rolled back, so even a misbehaving proposal leaves nothing."""
    from django.db import transaction

    from city_ops.copilot.calls import ToolCall
    from city_ops.copilot.executor import call_prepare

    writes = write_tools()
    statuses: Counter[str] = Counter()
    not_proposed: Counter[str] = Counter()  # "tool: status", to see why (no closure on that street to lift ...)
    with transaction.atomic():
        for call in calls:
            if call["tool"] not in writes:
                continue
            status = call.get("status") or call_prepare(user=user, call=ToolCall(call["tool"], call["args"])).status
            statuses[status] += 1
            if status != "proposed":
                not_proposed[f"{call['tool']}: {status}"] += 1
        transaction.set_rollback(True)
    return {"writes": sum(statuses.values()), **{s: statuses[s] for s in ("proposed", "refused", "failed", "done")},
            "not_proposed": dict(not_proposed)}


def bench_user(username: str):
    from django.contrib.auth import get_user_model

    from city_ops.core.roles import Role, user_has_role

    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or not user_has_role(user, Role.DISPATCHER):
        raise SystemExit(f"--user {username}: no active user with the dispatcher role (make demo creates one)")
    return user


def engines_available(*, user) -> tuple[dict[str, Engine], list[str]]:
    """The engines to measure, and a line for each one skipped: the LLM engine when an endpoint is
    configured."""
    engines: dict[str, Engine] = {"grammar": grammar_engine}
    skipped = []
    if os.environ.get("COPILOT_LLM_BASE_URL"):
        engines["llm"] = llm_engine(user)
    else:
        skipped.append("llm engine skipped: COPILOT_LLM_BASE_URL is not set")
    return engines, skipped


def report_print(results: dict, checks: dict, skipped: list[str], failures: bool) -> None:
    for line in skipped:
        print(line)
    print(f"{'engine':12} {'part':8} {'n':>4} {'tools':>7} {'tools+args':>11} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'wrong writes':>13}")
    for engine, parts in results.items():
        for part, r in parts.items():
            print(f"{engine:12} {part:8} {r['requests']:4} {r['tool_accuracy']:7.1%} {r['args_accuracy']:11.1%} "
                  f"{r['latency_ms_p50']:8.2f} {r['latency_ms_p95']:8.2f} {r['wrong_writes']:13}")
            for failure in r["failures"] if failures else []:
                print(f"    {failure['text']}\n      expect {failure['expect']}\n      got    {failure['got']}")
    if "llm-scripted" in results:
        print("llm-scripted: the scripted endpoint answers with the corpus's own calls - its accuracy checks the "
              "loop's plumbing and its latency is the loop's overhead, not a model's")
    print("write check (every write each engine called, through the executor; done must be 0):")
    for engine, c in checks.items():
        why = ", ".join(f"{k} {n}" for k, n in c["not_proposed"].items()) or "-"
        print(f"  {engine:12} writes {c['writes']:4}  proposed {c['proposed']:4}  refused {c['refused']:3}  "
              f"failed {c['failed']:3}  done {c['done']}  ({why})")


def bench_run(engines: dict[str, Engine], parts: tuple[str, ...], user) -> tuple[dict, dict]:
    """(results per engine and part, the write check per engine)."""
    results = {name: {part: corpus_run(engine, corpus_load(part)) for part in parts}
               for name, engine in engines.items()}
    checks = {name: writes_check([c for r in parts_.values() for c in r.pop("calls")], user)
              for name, parts_ in results.items()}
    return results, checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS, action="append", help="default: both")
    ap.add_argument("--scripted", action="store_true",
                    help="also run the LLM loop against the scripted endpoint (plumbing and overhead, not accuracy)")
    ap.add_argument("--user", default="dispatcher", help="the dispatcher the calls run as (default: dispatcher)")
    ap.add_argument("--failures", action="store_true", help="list the requests each engine got wrong")
    ap.add_argument("--json", action="store_true", help="print JSON only (failures included)")
    args = ap.parse_args()
    from bench._django import django_setup

    django_setup()
    from django.conf import settings

    from city_ops.copilot.testing import ScriptedModel

    user, parts = bench_user(args.user), tuple(args.part or PARTS)
    engines, skipped = engines_available(user=user)
    results, checks = bench_run(engines, parts, user)
    if args.scripted:
        model = ScriptedModel().start()
        settings.COPILOT_LLM_BASE_URL, settings.COPILOT_LLM_MODEL = model.base_url, "scripted"
        try:
            cases = [c for part in parts for c in corpus_load(part)]
            more, more_checks = bench_run({"llm-scripted": scripted_engine(model, user, cases)}, parts, user)
        finally:
            model.stop()
        results.update(more)
        checks.update(more_checks)
    if args.json:
        print(json.dumps({"engines": results, "write_check": checks, "skipped": skipped}, ensure_ascii=False))
    else:
        report_print(results, checks, skipped, args.failures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
