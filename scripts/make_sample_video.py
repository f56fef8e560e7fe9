#!/usr/bin/env python3
"""Make data/sample_video.mp4: a short "real" video for the real-video path (no download needed).

4 s at 24 fps, 96x64 px (landscape, so the short-side resize and centre crop matter): an orange
ball travelling along a wave over a gradient sky, with a frame counter bar at the bottom so the
sampled frame indices can be read off the pictures.
"""
from pathlib import Path

import numpy as np
import torch

from divot_mini.video_io import write_video

W, H, FPS, SECONDS = 96, 64, 24, 4
n = FPS * SECONDS
yy, xx = np.mgrid[0:H, 0:W] + 0.5
frames = np.zeros((n, H, W, 3), np.float32)
for t in range(n):
    sky = np.stack([0.25 + 0.3 * yy / H, 0.45 + 0.3 * yy / H, 0.85 - 0.2 * yy / H], -1)
    cx, cy = 10 + 76 * t / (n - 1), 28 + 14 * np.sin(2 * np.pi * t / (n - 1) * 1.5)
    cover = np.clip(7.5 - np.hypot(xx - cx, yy - cy), 0, 1)[..., None]
    img = sky * (1 - cover) + np.array([1.0, 0.55, 0.1]) * cover
    img[H - 3:, : int(W * (t + 1) / n)] = 1.0  # progress bar: which frame this is
    frames[t] = img
video = torch.from_numpy(frames).permute(0, 3, 1, 2) * 2 - 1
path = Path(__file__).resolve().parent.parent / "data" / "sample_video.mp4"
write_video(video, path, fps=FPS)
print("wrote", path, path.stat().st_size, "bytes")
