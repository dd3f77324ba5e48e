"""Copilot benchmark: how often each engine turns a dispatcher's request into the right tool calls, and how
fast, on the labelled corpus in bench/copilot_corpus/ (see its README for the labelling conventions).

    .venv/bin/python bench/copilot.py [--part tuned|heldout] [--failures] [--json]

Per engine and per part of the corpus (`tuned`: what the grammar was developed against; `heldout`: written
before the grammar and never tuned on): tool accuracy (the requests whose tools are all right), argument
accuracy (the requests whose calls are exactly right, tools and arguments), latency p50/p95, and wrong calls
that are writes (a wrong write never runs: the copilot only proposes writes until the user confirms, but it
is the costliest mistake to show). Engines: the grammar always; the LLM engine when COPILOT_LLM_BASE_URL is
set. Reads street, district, zone and sensor names from the local database (make demo); writes nothing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CORPUS = Path(__file__).resolve().parent / "copilot_corpus"
PARTS = ("tuned", "heldout")
# The tools that change something (the copilot proposes them and runs them only once confirmed).
WRITE_TOOLS = frozenset({"city.closure_open", "city.closure_lift", "bus.plan", "sanitation.plan",
                         "sanitation.plan_approve", "workorders.create"})

# An engine takes the request and the city's today and returns [{"tool", "args"}, ...].
Engine = Callable[[str, dt.date], list[dict]]


def corpus_load(part: str) -> list[dict]:
    path = CORPUS / f"{part}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _key(call: dict) -> str:
    return json.dumps({"tool": call["tool"], "args": call.get("args", {})}, sort_keys=True, ensure_ascii=False)


def case_score(expect: list[dict], got: list[dict]) -> dict:
    """One request: tools right (same tools, any order), calls right (same calls exactly), and the got
    calls that are writes and not expected."""
    expected_keys = {_key(c) for c in expect}
    return {
        "tools_ok": sorted(c["tool"] for c in expect) == sorted(c["tool"] for c in got),
        "calls_ok": sorted(map(_key, expect)) == sorted(map(_key, got)),
        "wrong_writes": sum(1 for c in got if c["tool"] in WRITE_TOOLS and _key(c) not in expected_keys),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def corpus_run(engine: Engine, cases: list[dict]) -> dict:
    """Accuracy and latency of one engine on one part; `failures` lists the requests it got wrong."""
    scores, latencies, failures = [], [], []
    for case in cases:
        started = time.perf_counter()
        got = engine(case["text"], dt.date.fromisoformat(case["today"]))
        latencies.append((time.perf_counter() - started) * 1000)
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
    }


def grammar_engine(text: str, today: dt.date) -> list[dict]:
    from city_ops.copilot.grammar import grammar_parse

    return [{"tool": c.tool, "args": c.args} for c in grammar_parse(text=text, today=today)]


def engines_available() -> tuple[dict[str, Engine], list[str]]:
    """The engines to measure, and a line for each one skipped. The LLM engine joins here when an endpoint
    is configured (it calls the copilot's model client, the way `ask` does)."""
    engines: dict[str, Engine] = {"grammar": grammar_engine}
    skipped = []
    if not os.environ.get("COPILOT_LLM_BASE_URL"):
        skipped.append("llm engine skipped: COPILOT_LLM_BASE_URL is not set")
    else:
        skipped.append("llm engine skipped: the bench has no LLM engine wired yet")
    return engines, skipped


def _report_print(results: dict, skipped: list[str], failures: bool) -> None:
    for line in skipped:
        print(line)
    print(f"{'engine':8} {'part':8} {'n':>4} {'tools':>7} {'tools+args':>11} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'wrong writes':>13}")
    for engine, parts in results.items():
        for part, r in parts.items():
            print(f"{engine:8} {part:8} {r['requests']:4} {r['tool_accuracy']:7.1%} {r['args_accuracy']:11.1%} "
                  f"{r['latency_ms_p50']:8.2f} {r['latency_ms_p95']:8.2f} {r['wrong_writes']:13}")
            for failure in r["failures"] if failures else []:
                print(f"    {failure['text']}\n      expect {failure['expect']}\n      got    {failure['got']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS, action="append", help="default: both")
    ap.add_argument("--failures", action="store_true", help="list the requests each engine got wrong")
    ap.add_argument("--json", action="store_true", help="print JSON only (failures included)")
    args = ap.parse_args()
    from bench._django import django_setup

    django_setup()
    engines, skipped = engines_available()
    results = {name: {part: corpus_run(engine, corpus_load(part)) for part in args.part or PARTS}
               for name, engine in engines.items()}
    if args.json:
        print(json.dumps({"engines": results, "skipped": skipped}, ensure_ascii=False))
    else:
        _report_print(results, skipped, args.failures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
