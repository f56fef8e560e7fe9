#!/usr/bin/env python3
"""Write data/frozen_examples.{json,safetensors}: what seed 0 renders for a few clips of every split.

tests/test_data.py re-renders them and compares (pixels within 1/255, captions exactly), so a
change to the generator that would alter old seeds fails loudly. Re-run this only for a
deliberate, documented break.
"""
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from divot_mini.data import SPLITS, MovingShapes

DATA = Path(__file__).resolve().parent.parent / "data"
meta = {"seed": 0, "resolution": 32, "splits": {}}
tensors = {}
for split in SPLITS:
    ds = MovingShapes(split, seed=0)
    meta["splits"][split] = []
    for i in (0, 511):
        item = ds[i]
        tensors[f"{split}/{i}"] = ((item["video"] + 1) * 127.5).round().to(torch.uint8).contiguous()
        meta["splits"][split].append({"index": i, "caption": item["caption"]})
save_file(tensors, str(DATA / "frozen_examples.safetensors"))
(DATA / "frozen_examples.json").write_text(json.dumps(meta, indent=1) + "\n")
print("wrote", DATA / "frozen_examples.*")
