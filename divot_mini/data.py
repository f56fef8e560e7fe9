"""Moving Shapes: the procedural video-text dataset the whole course trains on.

A clip is one coloured shape sliding across a dark background for 16 frames (2 s at 8 fps, the
official Divot clip). Everything about clip ``index`` of split ``split`` comes from a counter-based
hash of ``(seed, split, index, field)``, so a clip is the same whichever batch it is drawn in, clips
are generated on the fly in one vectorised pass, and a new attribute added later takes a new
``field`` number without changing any value that old seeds produced.

Shapes follow the same recipe as in the paper's figures: what is in the clip (shape, colour) and how
it moves (motion) are separate facts, so a tokenizer that sees one frame only can recover the first
two but never the third.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
MOTIONS = ("left", "right", "up", "down")
ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "motion": MOTIONS}

# RGB in [0, 1]; far apart in hue and brightness so a blurred, noisy or tinted clip keeps its colour.
PALETTE = torch.tensor([
    [0.90, 0.15, 0.15],  # red
    [0.15, 0.80, 0.20],  # green
    [0.20, 0.35, 0.95],  # blue
    [0.95, 0.85, 0.15],  # yellow
])
BACKGROUND = -1.0  # black in [-1, 1]
# Unit vectors in image coordinates (x right, y down).
DIRECTIONS = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])

# Attribute combinations (shape, colour, motion) never used for training. Every single value still
# occurs in training; only these pairings are new, which is what a generalisation test needs.
HELD_OUT = (
    ("circle", "red", "up"),
    ("circle", "yellow", "right"),
    ("square", "green", "left"),
    ("square", "blue", "down"),
    ("triangle", "blue", "right"),
    ("triangle", "yellow", "left"),
)

SPLITS = ("train", "val", "test", "heldout")
DEFAULT_SIZES = {"train": 50_000, "val": 512, "test": 1024, "heldout": 512}

# Field numbers of the random streams. Never renumber: add new fields with new numbers.
_F_COMBO, _F_X, _F_Y, _F_SPEED, _F_SIZE, _F_TEXT, _F_STORY = 1, 2, 3, 4, 5, 6, 7
_SPLIT_CODES = {"train": 11, "val": 12, "test": 13, "heldout": 14}


@dataclass(frozen=True)
class MovingShapesConfig:
    """How clips are drawn. Sizes and speeds are fractions of the frame, so any resolution works."""

    resolution: int = 32
    num_frames: int = 16
    fps: int = 8
    radius: tuple[float, float] = (0.14, 0.19)  # object radius / resolution
    speed: tuple[float, float] = (0.015, 0.028)  # displacement per frame / resolution

    def __post_init__(self):
        if self.resolution < 16:
            raise ValueError(f"resolution must be >= 16 px, got {self.resolution}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        travel = self.speed[1] * (self.num_frames - 1) + 2 * self.radius[1] * 1.25
        if travel > 0.95:
            raise ValueError("shapes this big and fast would leave the frame; lower radius or speed")


def combo_index(shape: int, colour: int, motion: int) -> int:
    return (shape * len(COLOURS) + colour) * len(MOTIONS) + motion


ALL_COMBOS = list(itertools.product(range(len(SHAPES)), range(len(COLOURS)), range(len(MOTIONS))))
HELD_OUT_IDS = tuple(
    combo_index(SHAPES.index(s), COLOURS.index(c), MOTIONS.index(m)) for s, c, m in HELD_OUT
)
TRAIN_COMBO_IDS = tuple(i for i in range(len(ALL_COMBOS)) if i not in HELD_OUT_IDS)


# ----------------------------------------------------------------------------- random streams
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """One round of the splitmix64 finaliser (uint64 arithmetic wraps, as intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform(seed: int, split: str, index, field: int) -> np.ndarray:
    """Counter-based uniforms in [0, 1): a pure function of (seed, split, index, field)."""
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed % 2**63, _SPLIT_CODES[split], field], dtype=np.uint64))
        key = _splitmix64(key[0] ^ _splitmix64(key[1] ^ _splitmix64(key[2])))
        x = _splitmix64(key ^ _splitmix64(np.asarray(index, dtype=np.uint64)))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _choice(u: np.ndarray, options: Sequence[int]) -> np.ndarray:
    return np.asarray(options)[np.minimum((u * len(options)).astype(np.int64), len(options) - 1)]


# ----------------------------------------------------------------------------- rendering
def render(shape, colour, motion, start, speed, radius, config: MovingShapesConfig) -> torch.Tensor:
    """Draw a batch of clips. All arguments are [B] tensors (start is [B, 2], in pixels).

    Returns [B, T, 3, H, W] in [-1, 1]. Edges are anti-aliased by an analytic coverage of one pixel,
    so sub-pixel motion moves the image smoothly instead of in 1-pixel jumps.
    """
    H, T = config.resolution, config.num_frames
    t = torch.arange(T, dtype=torch.float32)
    centre = start[:, None, :] + DIRECTIONS[motion][:, None, :] * (speed[:, None, None] * t[None, :, None])
    coords = torch.arange(H, dtype=torch.float32) + 0.5
    cover = torch.empty(len(shape), T, H, H)
    for s in shape.unique().tolist():  # one signed distance per shape group, not all three per clip
        sel = (shape == s).nonzero()[:, 0]
        dx = coords[None, None, None, :] - centre[sel, :, 0, None, None]  # [b, T, 1, W]
        dy = coords[None, None, :, None] - centre[sel, :, 1, None, None]  # [b, T, H, 1]
        r = radius[sel, None, None, None]
        if s == 0:  # circle
            dist = (dx * dx + dy * dy).sqrt_().sub_(r)
        elif s == 1:  # square: the box's coverage is separable, one 1-D ramp per axis
            half = 0.85 * r
            cover[sel] = (half + 0.5 - dx.abs()).clamp(0, 1) * (half + 0.5 - dy.abs()).clamp(0, 1)
            continue
        else:  # upward triangle: intersection of three half-planes (circumradius 1.3 r)
            dist = torch.maximum(0.866 * dx - 0.5 * dy, -0.866 * dx - 0.5 * dy)
            dist = torch.maximum(dist, dy.expand_as(dist)).sub_(0.55 * r)
        cover[sel] = dist.neg_().add_(0.5).clamp_(0.0, 1.0)
    rgb = (PALETTE[colour] * 2 - 1)[:, None, :, None, None]
    return torch.addcmul(torch.full((), BACKGROUND), cover[:, :, None], rgb - BACKGROUND)


# ----------------------------------------------------------------------------- text
def caption(shape: int, colour: int, motion: int) -> str:
    return f"a {COLOURS[colour]} {SHAPES[shape]} moves {MOTIONS[motion]}"


def partial_caption(shape: int, colour: int, motion: int, leave_out: str) -> str:
    """A caption with one attribute left out: the GMM diversity experiment asks for any colour."""
    if leave_out == "colour":
        return f"a {SHAPES[shape]} moves {MOTIONS[motion]}"
    if leave_out == "shape":
        return f"a {COLOURS[colour]} shape moves {MOTIONS[motion]}"
    if leave_out == "motion":
        return f"a {COLOURS[colour]} {SHAPES[shape]}"
    raise ValueError(f"leave_out must be one of {tuple(ATTRIBUTES)}, got {leave_out!r}")


QUESTIONS = {
    "shape": "what shape is it?",
    "colour": "what colour is the shape?",
    "motion": "which way does it move?",
}


def questions(shape: int, colour: int, motion: int) -> list[tuple[str, str]]:
    answers = {"shape": SHAPES[shape], "colour": COLOURS[colour], "motion": MOTIONS[motion]}
    return [(QUESTIONS[k], answers[k]) for k in ATTRIBUTES]


def story_sentences(shape: int, colour: int, motions: Sequence[int]) -> list[str]:
    first = f"a {COLOURS[colour]} {SHAPES[shape]} moves {MOTIONS[motions[0]]}."
    return [first] + [f"then it moves {MOTIONS[m]}." for m in motions[1:]]


def story_instruction(shape: int, colour: int) -> str:
    return f"generate a story about a {COLOURS[colour]} {SHAPES[shape]}"


# ----------------------------------------------------------------------------- datasets
def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def _as_indices(index, size: int) -> tuple[np.ndarray, bool]:
    single = isinstance(index, (int, np.integer))
    idx = np.atleast_1d(np.asarray(index.tolist() if torch.is_tensor(index) else index, dtype=np.int64))
    if idx.ndim != 1:
        raise IndexError("index must be an int or a 1-D sequence of ints")
    if len(idx) and (idx.min() < 0 or idx.max() >= size):
        raise IndexError(f"index out of range for a split of {size} clips: {idx.min()}..{idx.max()}")
    return idx, single


class MovingShapes(torch.utils.data.Dataset):
    """Clips of one split. ``ds[i]`` is one clip, ``ds[[i, j, ...]]`` a batch made in one pass.

    Each item is a dict: ``video`` [T, 3, H, W] in [-1, 1] (batched: [B, T, 3, H, W]), integer
    ``shape``/``colour``/``motion``, ``caption`` (str), and ``index``.
    """

    def __init__(self, split: str = "train", size: int | None = None, seed: int = 0,
                 config: MovingShapesConfig | None = None):
        _check_split(split)
        self.split, self.seed = split, seed
        self.size = DEFAULT_SIZES[split] if size is None else int(size)
        if self.size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.config = config or MovingShapesConfig()

    def __len__(self) -> int:
        return self.size

    def attributes(self, index) -> dict[str, torch.Tensor]:
        """The latent variables of clips (no rendering): attributes, start, speed, radius."""
        idx, _ = _as_indices(index, self.size)
        return self._attributes(idx, sub=0)

    def _attributes(self, idx: np.ndarray, sub: int, combos: np.ndarray | None = None) -> dict:
        cfg, res = self.config, self.config.resolution
        u = lambda f: uniform(self.seed, self.split, idx, f + 100 * sub)  # noqa: E731
        if combos is None:
            allowed = HELD_OUT_IDS if self.split == "heldout" else TRAIN_COMBO_IDS
            combos = _choice(u(_F_COMBO), allowed)
        shape, rest = np.divmod(combos, len(COLOURS) * len(MOTIONS))
        colour, motion = np.divmod(rest, len(MOTIONS))
        radius = res * (cfg.radius[0] + (cfg.radius[1] - cfg.radius[0]) * u(_F_SIZE))
        speed = res * (cfg.speed[0] + (cfg.speed[1] - cfg.speed[0]) * u(_F_SPEED))
        # Start anywhere that keeps the whole shape inside the frame for the whole clip.
        margin = 1.3 * radius + 0.5
        travel = speed * (cfg.num_frames - 1)
        d = DIRECTIONS.numpy()[motion]
        lo = margin + np.maximum(0, -d.T) * travel
        hi = res - margin - np.maximum(0, d.T) * travel
        start = lo + (hi - lo) * np.stack([u(_F_X), u(_F_Y)])
        t = lambda a, dt=torch.float32: torch.as_tensor(np.asarray(a), dtype=dt)  # noqa: E731
        return {"shape": t(shape, torch.long), "colour": t(colour, torch.long),
                "motion": t(motion, torch.long), "start": t(start.T), "speed": t(speed),
                "radius": t(radius)}

    def __getitem__(self, index):
        idx, single = _as_indices(index, self.size)
        a = self.attributes(idx)
        video = render(a["shape"], a["colour"], a["motion"], a["start"], a["speed"], a["radius"],
                       self.config)
        item = {"video": video, "shape": a["shape"], "colour": a["colour"], "motion": a["motion"],
                "caption": [caption(*c) for c in zip(a["shape"].tolist(), a["colour"].tolist(),
                                                     a["motion"].tolist())],
                "index": torch.as_tensor(idx)}
        if single:
            item = {k: v[0] for k, v in item.items()}
        return item

    def texts(self, index: int) -> dict:
        """All text attached to one clip: caption, QA pairs, partial captions."""
        a = self.attributes(index)
        s, c, m = (int(a[k][0]) for k in ATTRIBUTES)
        return {"caption": caption(s, c, m), "qa": questions(s, c, m),
                "partial": {k: partial_caption(s, c, m, k) for k in ATTRIBUTES}}


class MovingShapesStories(MovingShapes):
    """Three-clip stories: the same object (shape, colour) in every clip, a new motion each time.

    In train/val/test every clip's combination is a training combination; in ``heldout`` the first
    clip is a held-out combination.
    """

    num_clips = 3

    def __getitem__(self, index):
        idx, single = _as_indices(index, self.size)
        u = lambda f: uniform(self.seed, self.split, idx, _F_STORY * 1000 + f)  # noqa: E731
        n_m = len(MOTIONS)
        if self.split == "heldout":
            first = _choice(u(0), HELD_OUT_IDS)
        else:
            first = _choice(u(0), TRAIN_COMBO_IDS)
        pair = first // n_m
        motions = [first % n_m]
        for k in range(1, self.num_clips):
            # A motion different from the previous one, and (outside heldout) a training combination.
            cand = np.array([[m != prev and (self.split == "heldout" or p * n_m + m in TRAIN_COMBO_IDS)
                              for m in range(n_m)] for p, prev in zip(pair, motions[-1])])
            cum = cand.cumsum(1)
            pick = np.minimum((u(k) * cum[:, -1]).astype(np.int64), cum[:, -1] - 1)
            motions.append((cum > pick[:, None]).argmax(1))
        clips = []
        for k in range(self.num_clips):
            a = self._attributes(idx, sub=k + 1, combos=pair * n_m + motions[k])
            clips.append((a, render(a["shape"], a["colour"], a["motion"], a["start"], a["speed"],
                                    a["radius"], self.config)))
        shape, colour = clips[0][0]["shape"], clips[0][0]["colour"]
        motion = torch.stack([a["motion"] for a, _ in clips], 1)
        item = {
            "video": torch.stack([v for _, v in clips], 1),  # [B, 3 clips, T, 3, H, W]
            "shape": shape, "colour": colour, "motion": motion,
            "instruction": [story_instruction(s, c) for s, c in zip(shape.tolist(), colour.tolist())],
            "sentences": [story_sentences(s, c, m) for s, c, m in
                          zip(shape.tolist(), colour.tolist(), motion.tolist())],
            "index": torch.as_tensor(idx),
        }
        if single:
            item = {k: v[0] for k, v in item.items()}
        return item


def batches(dataset: MovingShapes, batch_size: int, shuffle: bool, seed: int = 0,
            drop_last: bool = False, num_samples: int | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader that asks the dataset for whole batches, so each batch is one vectorised call."""
    gen = torch.Generator().manual_seed(seed)
    if shuffle:
        base = torch.utils.data.RandomSampler(dataset, replacement=num_samples is not None,
                                              num_samples=num_samples, generator=gen)
    else:
        base = torch.utils.data.SequentialSampler(dataset)
    sampler = torch.utils.data.BatchSampler(base, batch_size, drop_last)
    return torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=None)


try:  # Lightning is a course dependency; keep the dataset importable without it.
    import lightning as L
except ImportError:  # pragma: no cover
    L = None


if L is not None:

    class MovingShapesDataModule(L.LightningDataModule):
        """Train/val/test/heldout loaders over Moving Shapes, for every training stage of the course.

        Training batches are drawn with replacement from an effectively endless split, so an
        "epoch" is just ``steps_per_epoch`` batches.
        """

        def __init__(self, batch_size: int = 32, seed: int = 0, steps_per_epoch: int = 500,
                     config: MovingShapesConfig | None = None, sizes: dict | None = None):
            super().__init__()
            if batch_size <= 0:
                raise ValueError(f"batch_size must be positive, got {batch_size}")
            self.batch_size, self.seed, self.steps_per_epoch = batch_size, seed, steps_per_epoch
            self.config = config or MovingShapesConfig()
            self.sizes = {**DEFAULT_SIZES, **(sizes or {})}

        def dataset(self, split: str) -> MovingShapes:
            return MovingShapes(split, size=self.sizes[split], seed=self.seed, config=self.config)

        def train_dataloader(self):
            # The epoch reseeds the order (a resumed run does not replay the same batches) and so
            # does the process rank (under DDP every process draws different clips).
            epoch = self.trainer.current_epoch if self.trainer is not None else 0
            rank = self.trainer.global_rank if self.trainer is not None else 0
            return batches(self.dataset("train"), self.batch_size, shuffle=True,
                           seed=self.seed * 1000 + epoch + 1_000_003 * rank,
                           num_samples=self.batch_size * self.steps_per_epoch, drop_last=True)

        def val_dataloader(self):
            return batches(self.dataset("val"), self.batch_size, shuffle=False)

        def test_dataloader(self):
            return batches(self.dataset("test"), self.batch_size, shuffle=False)

        def heldout_dataloader(self):
            return batches(self.dataset("heldout"), self.batch_size, shuffle=False)


def sample_indices_5_of_16(num_frames: int = 16, stride: int = 4) -> list[int]:
    """The tokenizer's 5 frames out of the de-tokenizer's 16: every 4th plus the last."""
    idx = list(range(0, num_frames, stride))
    return idx + [num_frames - 1] if idx[-1] != num_frames - 1 else idx


def tokenizer_frames(video: torch.Tensor) -> torch.Tensor:
    """Pick the tokenizer's 5 frames ([..., 16, 3, H, W] -> [..., 5, 3, H, W])."""
    if video.shape[-4] != 16:
        raise ValueError(f"expected 16 frames on dim -4, got video of shape {tuple(video.shape)}")
    return video[..., sample_indices_5_of_16(16), :, :, :]


def generation_speed(n: int = 4096, batch_size: int = 512, resolution: int = 32) -> float:
    """Clips per second of on-the-fly generation (used in notebook 00 and benchmarks)."""
    import time

    ds = MovingShapes("train", size=n, config=MovingShapesConfig(resolution=resolution))
    ds[list(range(min(batch_size, n)))]  # warm-up
    t0 = time.perf_counter()
    for s in range(0, n, batch_size):
        ds[list(range(s, min(n, s + batch_size)))]
    return n / (time.perf_counter() - t0)

