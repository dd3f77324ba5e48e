"""Read routing instances from files, telling the format from the content.

`instance_read` is the entry point: VRPLIB (CVRP, VRPTW, multi-trip), Solomon and Kim et al. files all
come back as one normalised `Instance`. A broken file raises `InstanceError` naming the line.
"""

from __future__ import annotations

import re
from pathlib import Path

from agents.sanitation.vrp.instance import Instance, InstanceError
from agents.sanitation.vrp.readers.kim import kim_parse
from agents.sanitation.vrp.readers.limits import MAX_FILE_BYTES
from agents.sanitation.vrp.readers.solomon import solomon_parse
from agents.sanitation.vrp.readers.vrplib import vrplib_parse

FORMATS = ("vrplib", "solomon", "kim")

# Published optima for instances whose files carry no reference value of their own (Solomon's text format
# has no comment field). Values in each set's own convention; see ../shared/benchmarks/SOURCE.md.
BEST_KNOWN: dict[str, float] = {
    "C101": 827.3,  # Solomon (1987); 10 routes
    "R101": 1637.7,  # Solomon (1987); 20 routes, distance-minimising optimum
}


def instance_format_detect(*, text: str) -> str:
    """'vrplib', 'solomon' or 'kim', judged from the content; `InstanceError` when none fits."""
    if re.search(
        r"^\s*(NODE_COORD_SECTION|EDGE_WEIGHT_SECTION|DEMAND_SECTION)\b", text, re.MULTILINE
    ) or re.search(r"^\s*DIMENSION\s*:", text, re.MULTILINE):
        return "vrplib"
    if re.search(r"^\s*VEHICLE\s*$", text, re.MULTILINE | re.IGNORECASE) and re.search(
        r"^\s*CUSTOMER\s*$", text, re.MULTILINE | re.IGNORECASE
    ):
        return "solomon"
    if re.search(r"^\s*Stop_ID\b", text, re.MULTILINE | re.IGNORECASE) or re.search(
        r"^\s*[0-9.]+\s*//", text, re.MULTILINE
    ):
        return "kim"
    raise InstanceError(
        "cannot tell the format: not VRPLIB (no DIMENSION or *_SECTION), not Solomon "
        "(no VEHICLE and CUSTOMER blocks), not Kim et al. (no 'value // comment' header)"
    )


def instance_parse(
    *, text: str, fmt: str | None = None, source: str = "<text>", convention: str | None = None
) -> Instance:
    """Parse instance text in the given or detected format."""
    if len(text) > MAX_FILE_BYTES:
        raise InstanceError(f"{source}: {len(text):,} characters, over the limit of {MAX_FILE_BYTES:,} this reader accepts")
    fmt = fmt or instance_format_detect(text=text)
    if fmt == "vrplib":
        instance = vrplib_parse(text=text, source=source, convention=convention)
    elif fmt == "solomon":
        instance = solomon_parse(text=text, source=source)
    elif fmt == "kim":
        instance = kim_parse(text=text, source=source)
    else:
        raise InstanceError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if instance.best_known is None:
        instance.best_known = BEST_KNOWN.get(instance.name)
    return instance


def instance_read(*, path: str | Path, fmt: str | None = None, convention: str | None = None) -> Instance:
    """Read an instance file. A sibling ``NAME.sol`` with a ``Cost`` line supplies the reference value.
    A file over `limits.MAX_FILE_BYTES` is refused before it is read."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InstanceError(
                f"{path}: {path.stat().st_size:,} bytes, over the limit of {MAX_FILE_BYTES:,} this reader accepts"
            )
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise InstanceError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InstanceError(f"{path}: cannot read ({exc.strerror})") from None
    instance = instance_parse(text=text, fmt=fmt, source=str(path), convention=convention)
    sol = path.with_suffix(".sol")
    if sol.is_file():
        cost = solution_cost_read(path=sol)
        if cost is not None:
            instance.best_known = cost
    return instance


def solution_cost_read(*, path: str | Path) -> float | None:
    """The ``Cost`` value of a VRPLIB solution file, or None when it has none."""
    match = re.search(
        r"^\s*Cost\s*:?\s*([0-9.]+)\s*$", Path(path).read_text(errors="replace"), re.MULTILINE | re.IGNORECASE
    )
    return float(match.group(1)) if match else None


__all__ = [
    "BEST_KNOWN",
    "FORMATS",
    "instance_format_detect",
    "instance_parse",
    "instance_read",
    "kim_parse",
    "solomon_parse",
    "solution_cost_read",
    "vrplib_parse",
]
