"""`manage.py solve_vrp` (a thin wrapper of the routing CLI: same options, same JSON) on a generated instance,
a broken file, and the shared benchmark instances."""
from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.sanitation.vrp import instance_read, plan_check, plan_cost


def vrplib_file(path, n: int = 12, seed: int = 4) -> None:
    """A generated CVRPLIB instance: depot 1, clients 2..n+1, capacity for about three routes."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 100, size=(n + 1, 2))
    demand = [0] + [int(d) for d in rng.integers(1, 10, size=n)]
    lines = ["NAME : generated", "TYPE : CVRP", f"DIMENSION : {n + 1}", "EDGE_WEIGHT_TYPE : EUC_2D",
             f"CAPACITY : {sum(demand) // 3 + 5}", "NODE_COORD_SECTION"]
    lines += [f"{i + 1} {x} {y}" for i, (x, y) in enumerate(xy)]
    lines += ["DEMAND_SECTION"] + [f"{i + 1} {d}" for i, d in enumerate(demand)]
    lines += ["DEPOT_SECTION", "1", "-1", "EOF"]
    path.write_text("\n".join(lines) + "\n")


def test_solve_vrp_on_a_generated_instance(tmp_path, capsys):
    path = tmp_path / "generated.vrp"
    vrplib_file(path)
    call_command("solve_vrp", str(path), "--time-limit", "0.5", "--json")
    doc = json.loads(capsys.readouterr().out)  # JSON alone on stdout
    assert doc["feasible"] and doc["instance"] == "generated" and doc["time_limit"] == 0.5
    visits = sorted(v for r in doc["routes"] for v in r)
    assert visits == list(range(2, 14))  # file numbering: clients 2..13, depot 1 left out
    inst = instance_read(path=path)
    assert plan_check(instance=inst, routes=doc["routes"]) == []
    assert doc["cost"] == plan_cost(instance=inst, routes=doc["routes"])
    # The plain text form says the same.
    call_command("solve_vrp", str(path), "--time-limit", "0.3")
    assert "feasible" in capsys.readouterr().out


def test_solve_vrp_refuses_a_broken_file(tmp_path, capsys):
    path = tmp_path / "bad.vrp"
    vrplib_file(path)
    path.write_text(path.read_text().replace("DEMAND_SECTION\n1 0", "DEMAND_SECTION\n1 zero"))
    with pytest.raises(CommandError) as err:
        call_command("solve_vrp", str(path), "--json")
    assert err.value.returncode == 2
    assert "line" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.shared
@pytest.mark.parametrize(("name", "max_gap"), [("A-n32-k5.vrp", 3.0), ("C101.txt", 3.0), ("C201R0.25.vrp", None),
                                               ("kim_102_stop.txt", None)])
def test_solve_vrp_on_the_shared_instances(shared_dir, capsys, name, max_gap):
    call_command("solve_vrp", str(shared_dir / "benchmarks" / "vrp" / name), "--time-limit", "2", "--json")
    doc = json.loads(capsys.readouterr().out)
    assert doc["feasible"] and doc["violations"] == []
    if max_gap is not None:
        assert doc["gap_pct"] is not None and 0 <= doc["gap_pct"] <= max_gap
    if name.startswith("C201"):
        assert doc["best_known"] == 15006 and doc["cost"] >= 15006
    if name.startswith("kim"):
        assert all(isinstance(v, int) for r in doc["routes"] for v in r)
