"""``python -m vision.detect IMAGE_OR_DIR... [--conf C] [--model PATH] [--json]`` (see vision.cli)."""

from vision.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
