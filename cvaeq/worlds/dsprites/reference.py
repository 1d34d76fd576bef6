"""Compare rendered images with real dSprites frames (the reference GIF).

``../shared/reference/dsprites.gif`` holds 320 frames of the real dataset. For
each frame we look for the best-matching image of the rendered grid by IoU:
either over the whole 737,280-image grid (:func:`best_matches_full`, exact,
about a minute) or over a neighbourhood of factors around a guess from the
frame's bounding box (:func:`best_matches_near`, seconds, for the fast tests).

>>> a = np.zeros((1, 64, 64), np.uint8); a[0, :2, :2] = 1
>>> float(iou(a, a)[0])
1.0
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...errors import DataError
from .factors import BASES, FACTORS, N_IMAGES, SIZES, classes_array_of
from .render import ORIGIN_PX, SPAN_PX, render

__all__ = [
    "reference_path",
    "load_frames",
    "iou",
    "best_matches_full",
    "best_matches_near",
]


def reference_path() -> Path:
    """The reference GIF: ``$CVAEQ_REFERENCE_GIF``, else ``shared/reference/dsprites.gif``
    next to (or above) the repository, else the copy in a source checkout's
    ``tests/data/reference/``."""
    env = os.environ.get("CVAEQ_REFERENCE_GIF")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "reference" / "dsprites.gif"
        if candidate.is_file():
            return candidate
    return here.parents[3] / "tests" / "data" / "reference" / "dsprites.gif"


def load_frames(path: str | Path | None = None) -> np.ndarray:
    """``(F, 64, 64)`` uint8 0/1 frames of the reference GIF."""
    from PIL import Image

    path = Path(path) if path is not None else reference_path()
    if not path.is_file():
        raise DataError(f"reference GIF {path} not found; set CVAEQ_REFERENCE_GIF to the dSprites GIF")
    frames = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):  # PIL types n_frames on animated formats only
            im.seek(i)
            frames.append(np.asarray(im.convert("L")) > 127)
    out = np.stack(frames).astype(np.uint8)
    if out.shape[1:] != (64, 64):
        raise DataError(f"{path}: frames are {out.shape[1:]}, expected 64x64")
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of binary images ``a`` and ``b`` (broadcast over leading axes)."""
    a = a.astype(bool)
    b = b.astype(bool)
    inter = (a & b).sum(axis=(-2, -1))
    union = (a | b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _grid_chunks(chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, N_IMAGES, chunk):
        idx = np.arange(start, min(start + chunk, N_IMAGES))
        yield start, classes_array_of(idx)


def best_matches_full(frames: np.ndarray, chunk: int = 4096, progress: bool = False):
    """Best grid image for every frame over all 737,280 images.

    Returns ``(iou, index)``: best IoU per frame and the grid index reaching it
    (the first in grid order on ties).
    """
    f = frames.reshape(len(frames), -1).astype(np.float32)
    f_area = f.sum(axis=1)
    best = np.full(len(frames), -1.0)
    best_idx = np.zeros(len(frames), dtype=np.int64)
    chunks = _grid_chunks(chunk)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, total=-(-N_IMAGES // chunk), desc="best match", unit="chunk")
    for start, classes in chunks:
        imgs = render(classes).reshape(len(classes), -1).astype(np.float32)
        inter = imgs @ f.T
        union = imgs.sum(axis=1)[:, None] + f_area[None, :] - inter
        score = inter / np.maximum(union, 1.0)
        arg = score.argmax(axis=0)
        top = score[arg, np.arange(len(frames))]
        better = top > best
        best[better] = top[better]
        best_idx[better] = start + arg[better]
    return best, best_idx


def _pos_class(centre: float) -> int:
    k = round((centre - ORIGIN_PX) / SPAN_PX * (SIZES["posX"] - 1))
    return int(np.clip(k, 0, SIZES["posX"] - 1))


def _guess_pos(frame: np.ndarray) -> tuple[int, int]:
    """posX, posY classes of the frame's bounding-box centre."""
    ys, xs = np.nonzero(frame)
    if len(xs) == 0:
        return 0, 0
    return _pos_class((xs.min() + xs.max() + 1) / 2), _pos_class((ys.min() + ys.max() + 1) / 2)


def best_matches_near(frames: np.ndarray, radius: int = 1):
    """Best grid image per frame among all shapes, scales and orientations at
    positions within ``radius`` classes of the frame's bounding-box centre.

    Returns ``(iou, index)`` like :func:`best_matches_full`.
    """
    shapes, scales, orients = (np.arange(SIZES[f]) for f in FACTORS[:3])
    base = np.stack(np.meshgrid(shapes, scales, orients, indexing="ij"), -1).reshape(-1, 3)
    best = np.zeros(len(frames))
    best_idx = np.zeros(len(frames), dtype=np.int64)
    offsets = range(-radius, radius + 1)
    for i, frame in enumerate(frames):
        kx, ky = _guess_pos(frame)
        pos = np.array([(kx + x, ky + y) for x in offsets for y in offsets], dtype=np.int64)
        pos = np.unique(np.clip(pos, 0, SIZES["posX"] - 1), axis=0)
        cand = np.concatenate([np.repeat(base, len(pos), axis=0), np.tile(pos, (len(base), 1))], axis=1)
        score = iou(render(cand), frame[None])
        j = int(score.argmax())
        best[i] = score[j]
        best_idx[i] = int(cand[j] @ BASES[1:])
    return best, best_idx
