#!/usr/bin/env python3
"""The course's two commands (standard library only, so it runs before anything is installed).

    python3 run.py course   # set up .venv, then execute every notebook into build/executed/ and
                            # regenerate figures/ (loads shipped weights, trains what is missing)
    python3 run.py test     # set up .venv, then run tests/ and every notebook under nbval (fast mode)

Options: --retrain (course: train every checkpoint from scratch instead of loading shipped weights),
--no-install (skip the set-up step; use the current .venv as it is).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".divot-install-stamp"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], env: dict | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, env=env)


def ensure_venv(install: bool) -> Path:
    if sys.version_info < (3, 10):
        sys.exit(f"divot-mini needs Python >= 3.10; this is {sys.version.split()[0]}")
    py = venv_python()
    if not py.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # Re-install only when the dependency list changed: a second run starts in seconds.
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if install and (not STAMP.exists() or STAMP.read_text() != want):
        t0 = time.time()
        run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", "."])
        STAMP.write_text(want)
        print(f"installed in {time.time() - t0:.0f} s", flush=True)
    return py


def course(py: Path, retrain: bool) -> None:
    env = dict(os.environ)
    env.pop("DIVOT_FAST", None)
    if retrain:
        # Train everything from scratch, once: an empty weights folder stands in for the shipped one
        # and a new cache folder receives what is trained (your existing cache is left untouched).
        fresh = ROOT / "build" / f"retrain-{time.strftime('%Y%m%d-%H%M%S')}"
        (fresh / "shipped").mkdir(parents=True)
        env["DIVOT_SHIPPED"], env["DIVOT_CACHE"] = str(fresh / "shipped"), str(fresh / "cache")
        env.pop("DIVOT_RETRAIN", None)
        print(f"retraining from scratch into {fresh / 'cache'}", flush=True)
    out = ROOT / "build" / "executed"
    out.mkdir(parents=True, exist_ok=True)
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        t0 = time.time()
        run([py, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
             "--ExecutePreprocessor.timeout=-1", "--output-dir", out, nb], env=env)
        print(f"{nb.name}: {time.time() - t0:.0f} s -> {out / nb.name}", flush=True)


def test(py: Path) -> None:
    env = dict(os.environ)
    env["DIVOT_FAST"] = "1"  # notebooks shrink their step counts but keep their asserts
    env.pop("DIVOT_RETRAIN", None)
    env.setdefault("MPLBACKEND", "Agg")
    run([py, "-m", "pytest", "tests", "notebooks", "--nbval-lax", "--nbval-current-env",
         "--nbval-sanitize-with", "notebooks/sanitize.cfg", "-q", "--durations=10"], env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job", choices=["course", "test"])
    ap.add_argument("--retrain", action="store_true", help="course: train everything from scratch")
    ap.add_argument("--no-install", action="store_true", help="skip the install step")
    args = ap.parse_args()
    t0 = time.time()
    py = ensure_venv(install=not args.no_install)
    try:
        course(py, args.retrain) if args.job == "course" else test(py)
    except subprocess.CalledProcessError as err:
        sys.exit(err.returncode)
    print(f"{args.job}: done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
