"""Rich display in notebooks: an answer shows its pictures and tables, a story its DAG.

Jupyter calls :meth:`Answer._repr_html_ <cvaeq.query.answer.Answer._repr_html_>`
(and ``_repr_png_``) and :meth:`Story._repr_svg_ <cvaeq.story.Story._repr_svg_>`,
which call the functions here: the same pictures as ``cvaeq query --out``
(evidence, sample grid, mean image; inline PNGs, grey or colour as the
world's pictures are) and the same numbers as its
table (a probability table per factor target, with bars), so a notebook user
sees at once what the command line writes into files.

>>> from cvaeq.query.answer import ask
>>> html = answer_html(ask("P(shape | do(scale=1))", story="default", samples=200, seed=0))
>>> "<table" in html and "heart" in html
True
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

__all__ = ["answer_html", "answer_png", "story_svg", "png_data_url"]

#: Single pictures are enlarged this many times in a notebook (pixel repetition).
SCALE = 2


def png_data_url(blob: bytes) -> str:
    """A ``data:`` URL of PNG bytes, for an ``<img>`` that needs no file."""
    return "data:image/png;base64," + base64.b64encode(blob).decode("ascii")


def _img(blob: bytes, caption: str) -> str:
    return (
        f'<figure style="display:inline-block;margin:0 12px 0 0;text-align:center">'
        f'<img src="{png_data_url(blob)}" style="image-rendering:pixelated;border:1px solid #999" '
        f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def answer_png(answer: Any) -> bytes | None:
    """The sample grid of an image answer as PNG bytes (None for other answers)."""
    if answer.sample_images is None:
        return None
    from .viz import grid, png_bytes

    return png_bytes(grid(answer.pictures()["samples"]))


def _table(name: str, dist: dict[str, float]) -> str:
    rows = [f"<tr><th style='text-align:left'>{escape(name)}</th><th>probability</th><th></th></tr>"]
    shown = {v: p for v, p in dist.items() if len(dist) <= 6 or p >= 5e-5}
    for v, p in shown.items():
        rows.append(
            f"<tr><td>{escape(v)}</td><td style='font-family:monospace'>{p:.4f}</td>"
            f"<td><div style='background:#1e88e5;height:10px;width:{round(200 * p)}px'></div></td></tr>"
        )
    if len(shown) < len(dist):
        rows.append(f"<tr><td colspan=3>({len(dist) - len(shown)} more values below 0.0001 not shown)</td></tr>")
    return "<table style='display:inline-table;margin-right:16px;vertical-align:top'>" + "".join(rows) + "</table>"


def answer_html(answer: Any) -> str:
    """An :class:`~cvaeq.query.answer.Answer` as HTML: its header line, its pictures
    (inline PNGs), predicted factors, probability tables, expectations, a continuous
    target's quantiles and histogram, and Z."""
    from .viz import grid, png_bytes, to_pixels

    source = answer.model if answer.model else f"story {answer.story!r} (true tables)"
    parts = [
        f"<div class='cvaeq-answer'><p><code>{escape(answer.query)}</code><br>"
        f"rung: {escape(answer.rung)} &nbsp; samples: {answer.samples} &nbsp; ESS: {answer.ess:.1f}"
        f" &nbsp; model: {escape(str(source))}</p>"
    ]
    parts += [f"<p style='color:#8a4b00'>warning: {escape(w)}</p>" for w in getattr(answer, "warnings", ())]
    if answer.mean_image is not None:
        pictures, pics = answer.pictures(), []  # on the [0, 1] scale: grey or colour PNGs alike
        if "evidence" in pictures:
            pics.append(_img(png_bytes(to_pixels(pictures["evidence"]), SCALE), "evidence"))
        pics.append(_img(png_bytes(to_pixels(pictures["mean"]), SCALE), "mean image"))
        pics.append(_img(png_bytes(grid(pictures["samples"])), "sampled images"))
        parts.append("<div>" + "".join(pics) + "</div>")
        if getattr(answer, "truth_note", None):  # a world without a renderer: no true picture to show
            parts.append(f"<p style='color:#555'>{escape(answer.truth_note)}</p>")
        parts.append(
            "<p>q(factors | X) reads the mean image as: "
            + escape(", ".join(f"{f}={v}" for f, v in answer.predicted.items()))
            + "</p>"
        )
    if answer.distribution:
        parts.append("<div>" + "".join(_table(t, d) for t, d in answer.distribution.items()) + "</div>")
    for t, e in answer.expectation.items():
        parts.append(f"<p><code>E[{escape(t)}] = {e:.6g}</code></p>")
    for t, qs in getattr(answer, "quantiles", {}).items():  # a continuous target: quantiles and histogram
        shown = ", ".join(f"{escape(q)} {v:.6g}" for q, v in qs.items())
        parts.append(f"<p><code>{escape(t)}</code> quantiles: {shown}</p>")
        edges, probs = answer.histogram[t]["edges"], answer.histogram[t]["probabilities"]
        bins = {f"{lo:.4g} to {hi:.4g}": p for lo, hi, p in zip(edges[:-1], edges[1:], probs)}
        parts.append("<div>" + _table(t, bins) + "</div>")
    if answer.probability is not None:
        parts.append(f"<p>probability: <code>{answer.probability:.4f}</code></p>")
    for t, stats in answer.latent.items():
        rows = "".join(
            f"<tr><td>{i}</td><td>{m:.4f}</td><td>{s:.4f}</td></tr>"
            for i, (m, s) in enumerate(zip(stats["mean"], stats["sd"]))
        )
        parts.append(f"<table><tr><th>{escape(t)} dim</th><th>mean</th><th>sd</th></tr>{rows}</table>")
    parts.append("</div>")
    return "".join(parts)


def story_svg(story: Any) -> str:
    """A story's DAG as SVG (:func:`cvaeq.dag_svg.dag_svg`)."""
    from .dag_svg import dag_svg

    return dag_svg(story.graph, title=f"the causal graph of story {story.name} (world {story.world.name})")
