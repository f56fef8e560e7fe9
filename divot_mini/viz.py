"""Pictures of clips: frame grids, inline animations, GIF/MP4 export to figures/, a widget player."""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .video_io import to_uint8, write_video

REPO_ROOT = Path(__file__).resolve().parent.parent


def is_fast() -> bool:
    """Fast mode (DIVOT_FAST=1): notebooks shrink step counts for CI but keep their asserts."""
    return os.environ.get("DIVOT_FAST", "0") not in ("", "0", "false", "False")


def figures_dir() -> Path:
    """Where figures go: $DIVOT_FIGURES, else figures/ (build/figures-fast/ in fast mode, so a test
    run never overwrites the course's figures with fast-mode pictures)."""
    if os.environ.get("DIVOT_FIGURES"):
        d = Path(os.environ["DIVOT_FIGURES"])
    elif is_fast():
        d = REPO_ROOT / "build" / "figures-fast"
    else:
        d = REPO_ROOT / "figures"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _clip(video: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(video):
        raise TypeError(f"expected a torch tensor, got {type(video).__name__}")
    if video.ndim == 5 and video.shape[0] == 1:
        video = video[0]
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"expected a clip [T, 3, H, W] in [-1, 1], got shape {tuple(video.shape)}")
    return video


def frame_grid(videos, titles: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
               frames: Sequence[int] | None = None, scale: float = 0.9, path: str | None = None):
    """Plot clips as rows of frames. ``videos``: a clip [T, 3, H, W], a batch [B, T, 3, H, W] or a
    list of clips. Returns the matplotlib figure (saved to figures/ when ``path`` is given)."""
    import matplotlib.pyplot as plt

    if torch.is_tensor(videos):
        videos = [videos] if videos.ndim == 4 else list(videos)
    videos = [_clip(v) for v in videos]
    T = videos[0].shape[0]
    frames = list(range(T)) if frames is None else list(frames)
    fig, axes = plt.subplots(len(videos), len(frames), squeeze=False,
                             figsize=(scale * len(frames), scale * len(videos) + 0.3))
    for r, v in enumerate(videos):
        img = to_uint8(v)
        for c, f in enumerate(frames):
            ax = axes[r][c]
            ax.imshow(img[f], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0 and titles is None:
                ax.set_title(f"t={f}", fontsize=7)
            if c == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
    if titles is not None:
        for c, t in enumerate(titles):
            axes[0][c].set_title(t, fontsize=7)
    fig.tight_layout(pad=0.2)
    if path is not None:
        fig.savefig(figures_dir() / path, dpi=120, bbox_inches="tight")  # keep long row labels
    return fig


def gif_bytes(video: torch.Tensor, fps: int = 8, upscale: int = 4) -> bytes:
    """A clip as GIF bytes, upscaled (nearest) so a 32-px clip is visible on screen."""
    from PIL import Image

    frames = to_uint8(_clip(video))
    if upscale > 1:
        frames = frames.repeat(upscale, axis=1).repeat(upscale, axis=2)
    buf = io.BytesIO()
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=int(1000 / fps),
                 loop=0)
    return buf.getvalue()


def animate(videos, captions: Sequence[str] | None = None, fps: int = 8, upscale: int = 4):
    """Inline looping animation of one or more clips side by side (an HTML object for notebooks)."""
    from IPython.display import HTML

    if torch.is_tensor(videos):
        videos = [videos] if videos.ndim == 4 else list(videos)
    cells = []
    for i, v in enumerate(videos):
        b64 = base64.b64encode(gif_bytes(v, fps, upscale)).decode()
        cap = f"<br><small>{captions[i]}</small>" if captions else ""
        cells.append(f'<div style="display:inline-block;text-align:center;margin:4px">'
                     f'<img src="data:image/gif;base64,{b64}" style="image-rendering:pixelated">'
                     f"{cap}</div>")
    return HTML("".join(cells))


def save_clip(video: torch.Tensor, name: str, fps: int = 8, upscale: int = 1) -> Path:
    """Export a clip to figures/NAME (.gif, .mp4 or .webm)."""
    video = _clip(video)
    if upscale > 1:
        video = video.repeat_interleave(upscale, -1).repeat_interleave(upscale, -2)
    return write_video(video, figures_dir() / name, fps=fps)


def clip_player(video: torch.Tensor, upscale: int = 6, fps: int = 8, title: str = ""):
    """An ipywidgets player: a play button and a frame slider over one clip."""
    import ipywidgets as widgets
    from PIL import Image

    frames = to_uint8(_clip(video))
    pngs = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(f.repeat(upscale, 0).repeat(upscale, 1))).save(buf, "PNG")
        pngs.append(buf.getvalue())
    image = widgets.Image(value=pngs[0], format="png")
    slider = widgets.IntSlider(0, 0, len(pngs) - 1, description="frame")
    play = widgets.Play(value=0, min=0, max=len(pngs) - 1, interval=int(1000 / fps))
    widgets.jslink((play, "value"), (slider, "value"))
    slider.observe(lambda ch: setattr(image, "value", pngs[ch["new"]]), names="value")
    return widgets.VBox([widgets.HTML(f"<b>{title}</b>"), image, widgets.HBox([play, slider])])
