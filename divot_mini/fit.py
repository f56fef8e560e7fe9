"""Small Lightning helpers shared by the course's short supervised/pre-training runs."""
from __future__ import annotations

import logging
import warnings

import lightning as L
import torch

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
                         accelerator: str = "cpu") -> None:
    """Train ``task`` (which updates ``model``) for ``steps`` batches of Moving Shapes training clips
    (on the CPU unless ``accelerator`` says "gpu"); ``model`` is left in eval mode."""
    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    dm = MovingShapesDataModule(batch_size=batch_size, seed=seed, steps_per_epoch=steps,
                                config=MovingShapesConfig(resolution=resolution))
    trainer = L.Trainer(max_steps=steps, max_epochs=1, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                        gradient_clip_val=gradient_clip_val)
    model.train()
    trainer.fit(task, train_dataloaders=dm.train_dataloader())
    model.eval()
