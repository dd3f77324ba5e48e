"""bench/copilot.py on the demo city: the LLM loop against the scripted endpoint answering with the corpus's own
calls gets every one of them through exactly (the wire names, the arguments, the executor), and no engine's
call that writes runs unconfirmed: every write comes back proposed (or refused by its checks), never done."""
from __future__ import annotations

import pytest

from agents.runtime.models import AgentRun
from bench.copilot import (
    PARTS,
    bench_run,
    corpus_load,
    grammar_engine,
    report_print,
    scripted_engine,
    write_tools,
)
from city_ops.city.models import RoadClosure
from city_ops.core.models import AuditEntry
from city_ops.workorders.models import WorkOrder


@pytest.mark.slow
def test_the_scripted_llm_loop_carries_every_corpus_call_and_no_write_runs_unconfirmed(demo_city, users,
                                                                                      scripted_llm):
    cases = [case for part in PARTS for case in corpus_load(part)]
    counts = [m.objects.count() for m in (AuditEntry, AgentRun, RoadClosure, WorkOrder)]
    engines = {"grammar": grammar_engine, "llm-scripted": scripted_engine(scripted_llm, users.dispatcher, cases)}
    results, checks = bench_run(engines, PARTS, users.dispatcher)
    report_print(results, checks, [], failures=False)  # the figures, with pytest -s
    for part in PARTS:
        scripted = results["llm-scripted"][part]
        assert scripted["requests"] == len(corpus_load(part))
        assert scripted["args_accuracy"] == 1.0, scripted["failures"][:3]
    expected_writes = sum(1 for case in cases for c in case["expect"] if c["tool"] in write_tools())
    assert checks["llm-scripted"]["writes"] == expected_writes >= 30
    for engine, check in checks.items():
        assert check["done"] == 0 and check["proposed"] >= 0.7 * check["writes"], (engine, check)
        assert check["proposed"] + check["refused"] + check["failed"] == check["writes"]
    # the model saw the tools on the wire and every request's calls came back to it as tool results
    assert "results__statement" in {t["function"]["name"] for t in scripted_llm.requests[0]["tools"]}
    # nothing was written: no run, closure or order, and no audit entry (recording proposals is the services')
    assert [m.objects.count() for m in (AuditEntry, AgentRun, RoadClosure, WorkOrder)] == counts
