"""Reading real videos the way the official Divot evaluation does, and writing clips to files.

The official rule (``eval_Divot_video_recon.py``): take 16 frame indices at 8 fps from the start of
the video (``np.linspace``, cast to int), keep every 4th plus the last (``[0, 4, 8, 12, 15]`` of the
16 -> 5 frames for the tokenizer), resize the short side to 256 and centre-crop 256, map to [-1, 1].
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

CLIP_FRAMES, CLIP_FPS, STRIDE = 16, 8, 4


def official_frame_indices(num_frames: int, video_fps: float, clip_frames: int = CLIP_FRAMES,
                           fps: float = CLIP_FPS, stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """The official sampling rule. Returns (16 clip indices, 5 tokenizer indices) into the video.

    Videos too short for 16 frames at 8 fps take the official fallback: an integer stride of
    ``num_frames // 16``. Below 16 frames that stride is 0 and the official code would return frame
    0 sixteen times; here the 16 indices are spread over the frames there are instead (a warning
    says so).
    """
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if not video_fps or not np.isfinite(video_fps) or video_fps <= 0:
        raise ValueError(f"video fps must be a positive number, got {video_fps}")
    interval = video_fps / fps
    max_frames = int(num_frames // interval)
    if max_frames < clip_frames:
        interval = int(num_frames / clip_frames)
        max_frames = clip_frames
    if interval == 0:
        warnings.warn(f"only {num_frames} frames (< {clip_frames}): frames are repeated to make a "
                      "clip (the official code would repeat frame 0 only)", stacklevel=2)
        idx = np.linspace(0, num_frames, clip_frames, endpoint=False)
    else:
        idx = np.linspace(0, max_frames * interval, max_frames, endpoint=False)
    idx = idx[:clip_frames].astype(np.int32)
    keep = np.append(idx[0::stride], idx[-1])
    return idx, keep


def resize_center_crop(frames: np.ndarray, size: int) -> torch.Tensor:
    """[N, H, W, 3] uint8 -> [N, 3, size, size] float in [-1, 1].

    torchvision's ``Resize(size)`` + ``CenterCrop(size)`` on PIL images, as the official transform:
    the short side becomes ``size`` (the long side ``int(size * long / short)``), bilinear with
    PIL's antialiasing, then the centre is cropped.
    """
    from PIL import Image

    out = []
    for f in frames:
        h, w = f.shape[:2]
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nh, nw = size, int(size * w / h)
        img = Image.fromarray(f).resize((nw, nh), Image.BILINEAR)
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32).copy()))
    return torch.stack(out).permute(0, 3, 1, 2) / 127.5 - 1.0


def read_frames(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode every frame of a video file (mp4, webm, gif, ...) -> ([N, H, W, 3] uint8, fps)."""
    import av

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read video {path}: {err}") from err
    if not frames:
        raise ValueError(f"{path}: the video has zero frames")
    fps = float(rate) if rate else 0.0
    if fps <= 0:
        raise ValueError(f"{path}: the video does not state a frame rate")
    return np.stack(frames), fps


def load_video_clip(path: str | os.PathLike, size: int = 256) -> dict:
    """Sample a clip from a real video file with the official rule.

    Returns a dict: ``frames`` [5, 3, size, size] (what the tokenizer reads), ``clip`` [16, 3, size,
    size] (what the de-tokenizer reconstructs), both in [-1, 1], plus the indices and source fps.
    """
    if size < 8:
        raise ValueError(f"size must be >= 8 px, got {size}")
    frames, fps = read_frames(path)
    idx, keep = official_frame_indices(len(frames), fps)
    return {"frames": resize_center_crop(frames[keep], size),
            "clip": resize_center_crop(frames[idx], size),
            "indices": idx, "tokenizer_indices": keep, "fps": fps, "num_frames": len(frames)}


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """[T, 3, H, W] in [-1, 1] -> [T, H, W, 3] uint8 (values outside [-1, 1] are clamped)."""
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"expected a clip [T, 3, H, W], got shape {tuple(video.shape)}")
    v = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return v.permute(0, 2, 3, 1).cpu().numpy()


def write_video(video: torch.Tensor, path: str | os.PathLike, fps: int = CLIP_FPS) -> Path:
    """Write a clip [T, 3, H, W] in [-1, 1] to .gif, .mp4 or .webm, atomically (temp file + rename)."""
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4", ".webm"):
        raise ValueError(f"unsupported video format {suffix!r} for {path}; use .gif, .mp4 or .webm")
    frames = to_uint8(video)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        if suffix == ".gif":
            from PIL import Image

            imgs = [Image.fromarray(f) for f in frames]
            imgs[0].save(tmp, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
        else:
            codec = "libx264" if suffix == ".mp4" else "libvpx-vp9"
            h, w = frames.shape[1:3]
            pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sides
            with av.open(str(tmp), mode="w") as container:
                stream = container.add_stream(codec, rate=fps)
                stream.width, stream.height, stream.pix_fmt = w + pad_w, h + pad_h, "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": "10"}
                for f in frames:
                    f = np.pad(f, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
                container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
