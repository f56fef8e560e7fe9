"""What the stage benchmarks share: a fresh cache for --retrain, and writing the result + bar verdict."""
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def retrain_into_fresh_cache(names: list[str]) -> str:
    """Make the weights policy train ``names`` from scratch into a new temporary cache (the user's cache
    and the shipped files are left alone). Call before importing divot_mini's checkpoints."""
    os.environ["DIVOT_CACHE"] = tempfile.mkdtemp(prefix="divot-bench-")
    os.environ["DIVOT_RETRAIN"] = ",".join(names)
    return os.environ["DIVOT_CACHE"]


def finish(result: dict, checks: dict[str, bool], out: str) -> None:
    """Store the checks in ``result``, write it to ``out`` as JSON, print it, exit 1 if a bar is missed."""
    result["bars"] = checks
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    sys.exit(0 if all(checks.values()) else 1)
