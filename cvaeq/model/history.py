"""The record of a run: the loss-curve PNG beside its checkpoint.

>>> loss_png_path("runs/model.safetensors").name
'model.loss.png'
>>> epoch_ticks(1, 28)
[5, 10, 15, 20, 25]
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["plot_history", "epoch_ticks", "loss_png_path"]


def epoch_ticks(first: int, last: int) -> list[int]:
    """At most 11 round epoch numbers between ``first`` and ``last`` to label
    the loss curve's axis with (every 1, 2, 5, 10, 20, 50, ... epochs)."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if (last - first) / s <= 10)
    return list(range(math.ceil(first / step) * step, last + 1, step))


def plot_history(history: list[dict], out: Path) -> Path:
    """Draw train loss and held-out -ELBO per epoch as a PNG (Pillow only)."""
    from PIL import Image, ImageDraw

    from ..paths import atomic_path

    w, h, pad = 640, 400, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    series = {
        "train -ELBO": ([e["epoch"] for e in history], [e["train_elbo_nats"] for e in history], (31, 119, 180)),
        "held-out -ELBO": ([e["epoch"] for e in history], [e["eval"]["elbo_nats"] for e in history], (214, 39, 40)),
    }
    ys = [v for _, vs, _ in series.values() for v in vs if math.isfinite(v)] or [0.0, 1.0]
    xs = [e["epoch"] for e in history] or [1]
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)

    def px(x, y):
        return (pad + (x - x0) / (x1 - x0) * (w - 2 * pad), h - pad - (y - lo) / (hi - lo) * (h - 2 * pad))

    d.rectangle([pad, pad, w - pad, h - pad], outline="black")
    for k in range(5):
        yv = lo + (hi - lo) * k / 4
        _, yp = px(x0, yv)
        d.text((4, yp - 6), f"{yv:.1f}", fill="black")
    for xv in epoch_ticks(x0, x1):
        xp, yp = px(xv, lo)
        d.line([xp, yp, xp, yp + 4], fill="black")
        d.text((xp - 3 * len(str(xv)), yp + 6), str(xv), fill="black")
    d.text((w // 2 - 20, h - pad + 22), "epoch", fill="black")
    d.text((pad, 12), "nats per image (lower is better)", fill="black")
    for i, (name, (ex, ev, color)) in enumerate(series.items()):
        pts = [px(x, y) for x, y in zip(ex, ev) if math.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        for p in pts:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=color)
        d.text((w - pad - 150, pad + 8 + 14 * i), name, fill=color)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        img.save(f, format="PNG")
    return out


def loss_png_path(checkpoint: str | Path) -> Path:
    """The loss-curve PNG written beside a checkpoint: ``<stem>.loss.png``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".loss.png")
