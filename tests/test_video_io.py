import numpy as np
import pytest
import torch

from divot_mini.data import MovingShapes, MovingShapesConfig
from divot_mini.video_io import load_video_clip, official_frame_indices, read_frames, write_video


@pytest.mark.parametrize("n, fps, clip, keep", [
    # 30 fps: interval 3.75, 26 candidate frames, first 16 kept
    (100, 30, [0, 3, 7, 11, 15, 18, 22, 26, 30, 33, 37, 41, 45, 48, 52, 56], [0, 15, 30, 45, 56]),
    (48, 24, list(range(0, 48, 3)), [0, 12, 24, 36, 45]),
    (64, 8, list(range(16)), [0, 4, 8, 12, 15]),
    # too short at 8 fps: the official fallback stride int(20 / 16) = 1
    (20, 30, list(range(16)), [0, 4, 8, 12, 15]),
    (40, 25, list(range(0, 32, 2)), [0, 8, 16, 24, 30]),
    # fewer than 16 frames: spread over what there is (documented deviation)
    (10, 8, [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9], [0, 2, 5, 7, 9]),
])
def test_official_frame_indices(n, fps, clip, keep):
    if n < 16:
        with pytest.warns(UserWarning, match="repeated"):
            idx, kept = official_frame_indices(n, fps)
    else:
        idx, kept = official_frame_indices(n, fps)
    assert idx.tolist() == clip and kept.tolist() == keep
    assert idx.max() < n


def test_frame_indices_bad_inputs():
    with pytest.raises(ValueError, match="at least one frame"):
        official_frame_indices(0, 30)
    with pytest.raises(ValueError, match="fps"):
        official_frame_indices(100, 0)


def _clip(res=64):
    return MovingShapes("val", config=MovingShapesConfig(resolution=res))[3]["video"]


@pytest.mark.parametrize("suffix, tol", [(".gif", 0.12), (".mp4", 0.08), (".webm", 0.12)])
def test_write_read_round_trip(tmp_path, suffix, tol):
    clip = _clip()
    path = write_video(clip, tmp_path / f"clip{suffix}")
    frames, fps = read_frames(path)
    assert frames.shape == (16, 64, 64, 3)
    assert fps == pytest.approx(8, rel=0.05)  # GIF stores centiseconds: 125 ms -> 12 cs
    out = load_video_clip(path, size=64)
    assert out["indices"].tolist() == list(range(16))
    assert out["frames"].shape == (5, 3, 64, 64) and out["clip"].shape == (16, 3, 64, 64)
    err = (out["clip"] - clip).abs().mean().item()
    assert err < tol, err
    assert torch.allclose(out["frames"], out["clip"][[0, 4, 8, 12, 15]])
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_resize_short_side_and_centre_crop(tmp_path):
    # A 48x80 video: the short side becomes 32, then the centre 32x32 is cut.
    f = np.zeros((20, 48, 80, 3), np.uint8)
    f[:, :, 40:] = 255  # right half white -> after crop, the right half of the output is white
    path = tmp_path / "wide.mp4"
    write_video(torch.from_numpy(f).permute(0, 3, 1, 2).float() / 127.5 - 1, path, fps=8)
    out = load_video_clip(path, size=32)
    assert out["clip"].shape == (16, 3, 32, 32)
    assert out["clip"][:, :, :, :12].mean() < -0.9 and out["clip"][:, :, :, 20:].mean() > 0.9


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        load_video_clip(tmp_path / "nope.mp4")
    bad = tmp_path / "notavideo.mp4"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="notavideo.mp4"):
        load_video_clip(bad)
    with pytest.raises(ValueError, match="not a file"):
        load_video_clip(tmp_path)
    with pytest.raises(ValueError, match="unsupported video format"):
        write_video(_clip(), tmp_path / "x.avi")
    with pytest.raises(ValueError, match=r"\[T, 3, H, W\]"):
        write_video(torch.zeros(16, 32, 32), tmp_path / "x.gif")
