"""benchmarks/tokenizer_scale.py end to end at toy size: the curve, the final report, and a weights file
that scripts/ship_tokenizer_run.py accepts only for the registered recipe."""
import json
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, *args):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "tokenizer_scale.py"), "--steps", "2", "--batch", "2",
           "--every", "1", "--n-decode", "4", "--n-probe", "8", "--threads", "1", "--accelerator", "cpu",
           "--random-vit", "--out", str(tmp_path), *args]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_joint_and_oracle_variants(tmp_path):
    _run(tmp_path, "--variant", "joint_fc")
    _run(tmp_path, "--variant", "oracle", "--tag", "oracle_toy")
    joint = json.loads((tmp_path / "joint_fc.json").read_text())
    assert joint["steps_done"] == 2 and joint["frame_channel"] and not joint["oracle"]
    assert [c["step"] for c in joint["curve"]] == [1]  # measured along the way, then at the end
    assert {"recon_motion", "tokens_motion", "swap_matches_donor_colour"} <= joint["final"].keys()
    with safe_open(str(tmp_path / "joint_fc.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert json.loads(f.metadata()["record"])["steps_done"] == 2
    assert any(k.startswith("tokenizer.") for k in keys)
    assert not any(k.startswith("detokenizer.first_stage_model.") for k in keys)  # the VAE ships apart
    oracle = json.loads((tmp_path / "oracle_toy.json").read_text())
    assert oracle["oracle"] and "tokens_motion" not in oracle["final"]  # no tokenizer to probe
    assert not (tmp_path / "oracle_toy.safetensors").exists()
    # the ship script refuses a run whose recipe is not the registered one (2 steps x 2 clips here)
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_tokenizer_run.py"),
                          str(tmp_path / "joint_fc.safetensors"), "--command", "toy"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "not the registered one" in out.stderr


def test_only_a_from_scratch_run_of_the_registered_recipe_may_ship():
    import importlib.util

    from divot_mini import tokenizer_training as T

    spec = importlib.util.spec_from_file_location("ship", ROOT / "scripts" / "ship_tokenizer_run.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    old = {"steps_done": T.TOKENIZER_STEPS, "recipe": {"batch_size": T.TOKENIZER_BATCH, "lr": T.TOKENIZER_LR}}
    assert ship.recipe_mismatch(old) is None  # the shipped run's record predates the new options
    new = {**old, "recipe": {**old["recipe"], "high_noise_frac": 0.3, "lr_schedule": "onecycle", "init": "scratch",
                             "resampler_pos_scale": 0.0}}
    assert ship.recipe_mismatch(new) is None
    for change in ({"init": "shipped"}, {"high_noise_frac": 1.0}, {"lr_schedule": "constant"}, {"lr": 3e-4},
                   {"resampler_pos_scale": 4.0}):
        bad = {**new, "recipe": {**new["recipe"], **change}}
        assert "not the registered one" in ship.recipe_mismatch(bad), change
