"""Print the project's runtime dependencies from pyproject.toml, one per line, for the image build.

    python deploy/requirements.py [--onnxruntime "onnxruntime-gpu[cuda,cudnn]"] > requirements.txt

The image installs dependencies in their own layer before the code is copied (so a code change does not
reinstall them), and the GPU variant swaps `onnxruntime` for `onnxruntime-gpu`: the two packages install
the same module and overwrite each other, so one environment holds exactly one of them. Standard library
only: it runs before anything is installed.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirement_name(spec: str) -> str:
    """The distribution name of a PEP 508 requirement (`numpy>=1.26` -> `numpy`), normalised."""
    name = re.split(r"[<>=!~\[ ;@]", spec.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_read(*, pyproject: Path = PYPROJECT, onnxruntime: str | None = None) -> list[str]:
    """The `[project] dependencies` list; with `onnxruntime`, that package replaces the declared
    onnxruntime entry and keeps its version range unless it states its own."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    try:
        deps = data["project"]["dependencies"]
    except KeyError:
        raise SystemExit(f"{pyproject}: no [project] dependencies") from None
    if not onnxruntime:
        return list(deps)
    out, replaced = [], False
    for dep in deps:
        if requirement_name(dep) == "onnxruntime":
            version = re.search(r"[<>=!~].*$", dep.split(";")[0])
            own_version = re.search(r"[<>=!~]", onnxruntime)
            out.append(onnxruntime + (version.group(0).strip() if version and not own_version else ""))
            replaced = True
        else:
            out.append(dep)
    if not replaced:
        raise SystemExit(f"{pyproject}: no onnxruntime dependency to replace with {onnxruntime!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnxruntime", default="",
                        help="the ONNX Runtime package for this image, e.g. 'onnxruntime-gpu[cuda,cudnn]' "
                             "(default: the declared onnxruntime, the CPU build)")
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    args = parser.parse_args(argv)
    sys.stdout.write("\n".join(requirements_read(pyproject=args.pyproject, onnxruntime=args.onnxruntime)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
