"""Small Lightning helpers shared by the course's short supervised/pre-training runs."""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from .data import MovingShapesConfig, MovingShapesDataModule


def quiet_lightning() -> None:
    """Keep notebook output to the progress bar: no hardware banner, tips or known-harmless warnings."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning",
                 "lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    # the frozen ViT is in eval mode on purpose
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")


def fit_on_moving_shapes(task: L.LightningModule, model: torch.nn.Module, steps: int,
                         batch_size: int, seed: int, resolution: int = 32,
                         progress: bool = True, gradient_clip_val: float | None = None,
                         accelerator: str = "cpu", train_size: int | None = None,
                         resume_dir: Path | None = None, recipe: dict | None = None,
                         save_every: int = 100) -> None:
    """Train ``task`` (which updates ``model``) for ``steps`` batches of Moving Shapes training clips
    (on the CPU unless ``accelerator`` says "gpu"); ``model`` is left in eval mode.

    ``train_size``: draw from the first this many training clips only (a pool whose frozen latents
    can be computed once). ``resume_dir``: save a checkpoint there every ``save_every`` steps and, if
    one is there from an interrupted run of the same ``recipe``, continue from it."""
    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    dm = MovingShapesDataModule(batch_size=batch_size, seed=seed, steps_per_epoch=steps,
                                config=MovingShapesConfig(resolution=resolution),
                                sizes={"train": train_size} if train_size else None)
    callbacks, ckpt = [], None
    if resume_dir is not None:
        ckpt = prepare_resume(Path(resume_dir), recipe or {})
        callbacks.append(ModelCheckpoint(dirpath=resume_dir, every_n_train_steps=save_every,
                                         save_last=True, save_top_k=0))
    trainer = L.Trainer(max_steps=steps, max_epochs=1, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=resume_dir is not None, callbacks=callbacks,
                        enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0, gradient_clip_val=gradient_clip_val)
    model.train()
    # our own checkpoint of this run: tensors and plain Python state only
    trainer.fit(task, train_dataloaders=dm.train_dataloader(), ckpt_path=ckpt, weights_only=False)
    model.eval()


def prepare_resume(directory: Path, recipe: dict) -> Path | None:
    """The checkpoint to continue from in ``directory`` (None: start afresh), after checking that it
    belongs to the same recipe; a run of another recipe is never overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / "recipe.json"
    if stamp.exists():
        old = json.loads(stamp.read_text())
        if old != json.loads(json.dumps(recipe)):
            raise ValueError(f"{directory} holds an interrupted run of another recipe ({old}); "
                             f"move it away or delete it to start this one ({recipe})")
    else:
        stamp.write_text(json.dumps(recipe, indent=1))
    last = directory / "last.ckpt"
    return last if last.exists() else None
