"""The weights policy every stage of the course uses: load what ships, else what you trained, else train.

A named checkpoint resolves to

1. a small file shipped with the package (``divot_mini/weights/NAME.safetensors`` + ``NAME.json``,
   the provenance: producing command, seed, commit, measured metrics, sha256, config), else
2. your cache (``$DIVOT_CACHE``, default ``.cache/divot/`` in the repository, git-ignored), else
3. training it now (a Lightning progress bar shows how far it is), saved to the cache.

``DIVOT_RETRAIN=all`` (or a comma-separated list of names) skips 1 and 2 and trains from scratch.
Every file is checked before use (sha256 against its provenance, config, key names and shapes); a
file that fails is reported and never used. Writes are atomic (temporary file + rename), and a
broken file in your cache is renamed aside, not deleted.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "weights"
REPO_ROOT = PACKAGE_DIR.parent


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used (corrupt, truncated or incompatible)."""


@dataclass
class CheckpointSpec:
    """How to build, and if needed train, one named checkpoint.

    ``build()`` returns the untrained module; ``train(module, seed)`` trains it in place and returns
    a dict of measured metrics (stored in the provenance). ``config`` is JSON data that must match
    the file's for the file to be used: change the architecture, change the config.
    """

    name: str
    build: Callable[[], torch.nn.Module]
    train: Callable[[torch.nn.Module, int], dict]
    config: dict = field(default_factory=dict)
    seed: int = 0
    command: str = ""


REGISTRY: dict[str, CheckpointSpec] = {}
# Names retrained in this process because of DIVOT_RETRAIN: a later load uses that fresh cache file
# instead of training again (a notebook may load the same checkpoint several times).
_RETRAINED: set[str] = set()


def later_fields_omitted(config: dict, later: dict) -> dict:
    """A configuration dict without the fields added after weights were first shipped (``later``:
    field -> the value that means "as before") where they hold that value: such fields are written
    only when set, so the configuration stored with earlier weights still matches the code's."""
    return {k: v for k, v in config.items() if not (k in later and v == later[k])}


def register(spec: CheckpointSpec) -> CheckpointSpec:
    REGISTRY[spec.name] = spec
    return spec


def cache_dir() -> Path:
    return Path(os.environ.get("DIVOT_CACHE") or REPO_ROOT / ".cache" / "divot")


def shipped_dir() -> Path:
    return Path(os.environ.get("DIVOT_SHIPPED") or SHIPPED_DIR)


def forced_retrain(name: str) -> bool:
    val = os.environ.get("DIVOT_RETRAIN", "").strip()
    if val.lower() in ("", "0", "false", "no"):
        return False
    return val.lower() in ("1", "all", "true", "yes") or name in {v.strip() for v in val.split(",")}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return "unknown"
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def paths(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / f"{name}.safetensors", directory / f"{name}.json"


def verify(spec: CheckpointSpec, directory: Path, module: torch.nn.Module) -> dict:
    """Check a checkpoint against its provenance and the module; return (state_dict, provenance).

    Raises FileNotFoundError when there is none, CheckpointError when it exists but is unusable.
    """
    weights, meta = paths(directory, spec.name)
    if not weights.exists() and not meta.exists():
        raise FileNotFoundError(weights)
    if not weights.exists() or not meta.exists():
        missing = weights if not weights.exists() else meta
        raise CheckpointError(f"{missing.name} is missing beside its pair in {directory}")
    try:
        prov = json.loads(meta.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta} is not valid JSON: {err}") from err
    digest = sha256(weights)
    if prov.get("sha256") != digest:
        raise CheckpointError(f"{weights} does not match its provenance (sha256 {digest[:12]}… != "
                              f"{str(prov.get('sha256'))[:12]}…): corrupted, truncated or replaced")
    if prov.get("config") != spec.config:
        raise CheckpointError(f"{weights} was made for another configuration: file has "
                              f"{prov.get('config')}, code expects {spec.config}")
    try:
        state = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error types for malformed headers
        raise CheckpointError(f"{weights} cannot be read as safetensors: {err}") from err
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        problems = [f"missing {k}" for k in expected.keys() - got.keys()]
        problems += [f"unexpected {k}" for k in got.keys() - expected.keys()]
        problems += [f"{k}: file {got[k]} != model {expected[k]}"
                     for k in expected.keys() & got.keys() if got[k] != expected[k]]
        raise CheckpointError(f"{weights} does not fit the model: " + "; ".join(sorted(problems)))
    return {"state": state, "provenance": prov, "path": weights}


def save(spec: CheckpointSpec, module: torch.nn.Module, metrics: dict, directory: Path,
         train_seconds: float | None = None, command: str | None = None,
         extra: dict | None = None) -> Path:
    """Write weights + provenance atomically. An existing pair is kept as NAME.prev.*. ``extra``:
    more provenance fields (e.g. ``trained_on`` for a run made on another machine)."""
    directory.mkdir(parents=True, exist_ok=True)
    weights, meta = paths(directory, spec.name)
    tmp_w = weights.with_name(f".{weights.name}.{os.getpid()}.tmp")
    tmp_m = meta.with_name(f".{meta.name}.{os.getpid()}.tmp")
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(tmp_w), metadata={"name": spec.name})
        import lightning
        import transformers

        prov = {
            "name": spec.name,
            "command": command or spec.command or " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "seed": spec.seed,
            "commit": git_commit(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "train_seconds": None if train_seconds is None else round(train_seconds, 1),
            "threads": torch.get_num_threads(),
            "metrics": metrics,
            "sha256": sha256(tmp_w),
            "config": spec.config,
            "versions": {"torch": torch.__version__, "lightning": lightning.__version__,
                         "transformers": transformers.__version__,
                         "python": sys.version.split()[0]},
            **(extra or {}),
        }
        tmp_m.write_text(json.dumps(prov, indent=2) + "\n")
        for path in (weights, meta):
            if path.exists():
                os.replace(path, path.with_name(path.name.replace(spec.name, spec.name + ".prev", 1)))
        os.replace(tmp_w, weights)
        os.replace(tmp_m, meta)
    finally:
        tmp_w.unlink(missing_ok=True)
        tmp_m.unlink(missing_ok=True)
    return weights


def _set_aside(directory: Path, name: str) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for p in paths(directory, name):
        if p.exists():
            os.replace(p, p.with_name(f"{p.name}.bad-{stamp}"))


def train_and_save(spec: CheckpointSpec, directory: Path | None = None,
                   command: str | None = None) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(spec.seed)
    module = spec.build()
    t0 = time.time()
    metrics = spec.train(module, spec.seed)
    seconds = time.time() - t0
    path = save(spec, module, metrics, directory or cache_dir(), seconds, command)
    module.eval()
    return module, verify(spec, path.parent, spec.build())["provenance"]


def load(name: str, verbose: bool = True) -> tuple[torch.nn.Module, dict]:
    """Resolve a named checkpoint (shipped -> cache -> train) and return (module in eval mode,
    provenance dict with an added ``source``: "shipped", "cache" or "trained")."""
    if name not in REGISTRY:
        raise KeyError(f"unknown checkpoint {name!r}; registered: {sorted(REGISTRY)}")
    spec = REGISTRY[name]
    say = print if verbose else (lambda *a, **k: None)
    module = spec.build()
    forced = forced_retrain(name)
    if not forced or name in _RETRAINED:
        sources = (("cache", cache_dir()),) if forced else (("shipped", shipped_dir()), ("cache", cache_dir()))
        for source, directory in sources:
            try:
                found = verify(spec, directory, module)
            except FileNotFoundError:
                continue
            except CheckpointError as err:
                warnings.warn(f"not using {source} checkpoint {name!r}: {err}", stacklevel=2)
                if source == "cache":
                    _set_aside(directory, name)
                    say(f"{name}: the broken cache files were renamed *.bad-<time> in {directory}")
                continue
            module.load_state_dict(found["state"])
            module.eval()
            say(f"{name}: loaded {source} weights {found['path']}")
            return module, {**found["provenance"], "source": source}
    say(f"{name}: training from scratch (seed {spec.seed}); it is saved to {cache_dir()}")
    module, prov = train_and_save(spec)
    if forced:
        _RETRAINED.add(name)
    return module, {**prov, "source": "trained"}
