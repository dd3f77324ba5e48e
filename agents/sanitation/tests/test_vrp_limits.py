"""Files that declare sizes they do not hold fail in well under a second with the reason, before anything
of the declared size is allocated (issue 14: a 197-byte VRPLIB file grew the solver to 22.8 GB)."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import CommandError, call_command

from agents.sanitation.vrp import InstanceError, instance_parse, instance_read
from agents.sanitation.vrp.cli import main
from agents.sanitation.vrp.readers.limits import MAX_FILE_BYTES, MAX_LOCATIONS

from .test_vrp_readers import KIM, SOLOMON

# The file of the report, byte for byte: two billion locations and an explicit matrix of one number.
BOMB = (
    "NAME : dim-bomb-197\nTYPE : CVRP\nDIMENSION : 2000000000\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
    "EDGE_WEIGHT_FORMAT : LOWER_ROW\nCAPACITY : 100\nEDGE_WEIGHT_SECTION\n1\nDEMAND_SECTION\n1 0\n2 1\n"
    "DEPOT_SECTION\n1\n-1\nEOF\n"
)
# Seconds of this process's CPU time, not of the clock: a refusal that does no work is fast however busy the
# machine is (the clock said 2.2 s once, on a machine running two suites beside a demo).
FAST_S = 1.0


def explicit(dim: int, *, weights: int, demands: int | None = None, extra: str = "") -> str:
    """A LOWER_ROW VRPLIB text declaring `dim` locations, holding `weights` edge weights and `demands`
    demand rows (dim when None)."""
    rows = "\n".join(f"{i} {int(i > 1)}" for i in range(1, (dim if demands is None else demands) + 1))
    return (
        f"NAME : x\nTYPE : CVRP\nDIMENSION : {dim}\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
        f"EDGE_WEIGHT_FORMAT : LOWER_ROW\nCAPACITY : 100\n{extra}EDGE_WEIGHT_SECTION\n"
        + " ".join(["1"] * weights)
        + f"\nDEMAND_SECTION\n{rows}\nDEPOT_SECTION\n1\n-1\nEOF\n"
    )


def kim_sites(count: int) -> str:
    """A Kim file with `count` site rows (a depot, a landfill, the rest stops)."""
    head = KIM.split("0   0.00")[0]
    rows = ["0 0 0 0400 1500 0 9999 0", "1 10 0 0000 2400 60 9999 2"]
    rows += [f"{i} {i} 5 0000 2400 30 1 1" for i in range(2, count)]
    return head + "\n".join(rows) + "\n"


def failing_fast(call, message: str) -> InstanceError:
    """Run `call`, expect an `InstanceError` containing `message` within FAST_S seconds of CPU."""
    started = time.process_time()
    with pytest.raises(InstanceError) as err:
        call()
    elapsed = time.process_time() - started
    assert message in str(err.value)
    assert elapsed < FAST_S, f"took {elapsed:.2f} s to refuse: {err.value}"
    return err.value


def test_the_197_byte_file_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.vrp"
    path.write_text(BOMB)
    assert path.stat().st_size == 197
    error = failing_fast(lambda: instance_read(path=path), "DIMENSION 2000000000 exceeds the limit of 5,000")
    assert "line 3" in str(error)


def test_the_command_exits_2_with_the_reason(tmp_path, capsys):
    path = tmp_path / "bomb.vrp"
    path.write_text(BOMB)
    started = time.process_time()
    assert main([str(path), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert "exceeds the limit" in out["error"]
    with pytest.raises(CommandError) as err:
        call_command("solve_vrp", str(path))
    assert err.value.returncode == 2
    assert time.process_time() - started < 2 * FAST_S


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        # DIMENSION within the limit, but the sections hold far fewer nodes: refused before the matrix.
        (explicit(MAX_LOCATIONS, weights=3, demands=3), "vrplib", "DEMAND_SECTION has 3 rows, DIMENSION says 5000"),
        # Every node listed, but the explicit matrix is short: counted before it is built.
        (explicit(MAX_LOCATIONS, weights=10), "vrplib", "EDGE_WEIGHT_SECTION has 10 values, LOWER_ROW for"),
        (explicit(3, weights=2), "vrplib", "EDGE_WEIGHT_SECTION has 2 values, LOWER_ROW for DIMENSION 3 needs 3"),
        (explicit(3, weights=4), "vrplib", "EDGE_WEIGHT_SECTION has 4 values"),
        (explicit(MAX_LOCATIONS + 1, weights=1), "vrplib", "DIMENSION 5001 exceeds the limit"),
        (explicit(3, weights=3, extra="VEHICLES : 2000000000\n"), "vrplib", "VEHICLES 2000000000 exceeds the limit"),
        (explicit(3, weights=3).replace("CAPACITY : 100", "CAPACITY : -5"), "vrplib", "CAPACITY must be at least 0"),
        (explicit(3, weights=3).replace("CAPACITY : 100", "CAPACITY : 1e12"), "vrplib", "CAPACITY 1000000000000 exce"),
        (explicit(3, weights=3).replace("\n3 1\n", "\n3 9e15\n"), "vrplib", "demand 9000000000000000 exceeds"),
        (explicit(3, weights=3).replace("SECTION\n1 1 1", "SECTION\n1 1e300 1"), "vrplib", "edge weight 1000000"),
        (SOLOMON.replace("3         100", "2000000000 100"), "solomon", "vehicle number 2000000000 exceeds"),
        (SOLOMON.replace("3         100", "3 -1"), "solomon", "vehicle capacity must be at least 1, found -1"),
        (SOLOMON.replace("3         100", "3 1e15"), "solomon", "vehicle capacity 1000000000000000 exceeds"),
        (KIM.replace("10.0 \t\t//", "-10.0 \t\t//"), "kim", "capacity, daily cap, stop limit and speed must be"),
        (KIM.replace("10.0 \t\t//", "1e30 \t\t//"), "kim", "the vehicle capacity 1e+30 exceeds the limit"),
        (KIM.replace("15.5\t\t//", "1e300\t\t//"), "kim", "the daily load cap 1e+300 exceeds the limit"),
        (kim_sites(MAX_LOCATIONS + 1), "kim", "the count of site rows 5001 exceeds the limit of 5,000"),
    ],
)
def test_declared_sizes_beyond_the_content_or_the_limits_fail_fast(text, fmt, message):
    failing_fast(lambda: instance_parse(text=text, fmt=fmt, source="bad"), message)


def test_a_file_over_the_size_limit_is_not_read(tmp_path):
    path = tmp_path / "big.vrp"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk, and reading it would take all of it in memory
    failing_fast(lambda: instance_read(path=path), f"{MAX_FILE_BYTES + 1:,} bytes, over the limit")


def test_an_explicit_matrix_at_the_count_is_read_as_before():
    """The triangle is filled in numpy's row order, as the format lists it."""
    text = explicit(3, weights=3).replace("SECTION\n1 1 1", "SECTION\n4 5 6")
    inst = instance_parse(text=text)
    assert inst.distance.tolist() == [[0, 4, 5], [4, 0, 6], [5, 6, 0]]
    upper = text.replace("LOWER_ROW", "UPPER_ROW")
    assert instance_parse(text=upper).distance.tolist() == [[0, 4, 5], [4, 0, 6], [5, 6, 0]]
    full = text.replace("LOWER_ROW", "FULL_MATRIX").replace("SECTION\n4 5 6", "SECTION\n0 4 5\n4 0 6\n5 6 0")
    assert instance_parse(text=full).distance.tolist() == [[0, 4, 5], [4, 0, 6], [5, 6, 0]]
