"""The built-in image mechanisms, as the ``register_image_mechanisms`` hook takes them.

Each is a factory ``factory(image_model=..., parents=..., factors=..., shape=...)``
with the pixel kind it models as its attribute ``pixel``:

* ``bernoulli`` (``pixel = "binary"``): :func:`~cvaeq.mechanisms.image.bernoulli_image`,
  the same factory the ``bernoulli_image`` mechanism family registers (so a
  binary world's SCM is what it was, bit for bit);
* ``discretised_logistic`` (``pixel = "8bit"``):
  :func:`~cvaeq.mechanisms.levels_image.discretised_logistic_image`.

>>> bernoulli.pixel, discretised_logistic.pixel
('binary', '8bit')
"""

from __future__ import annotations

from typing import Any

from .image import bernoulli_image
from .levels_image import discretised_logistic_image

__all__ = ["bernoulli", "discretised_logistic", "PIXEL_MECHANISMS"]

#: The built-in image mechanism of each pixel kind (what a model that names none gets).
PIXEL_MECHANISMS = {"binary": "bernoulli", "8bit": "discretised_logistic"}


def bernoulli(**params: Any):
    """Binary pixels ``1[U < p]``: :func:`~cvaeq.mechanisms.image.bernoulli_image` (``params`` as it takes them)."""
    return bernoulli_image(**params)


def discretised_logistic(**params: Any):
    """8-bit levels: :func:`~cvaeq.mechanisms.levels_image.discretised_logistic_image`."""
    return discretised_logistic_image(**params)


bernoulli.pixel = "binary"  # type: ignore[attr-defined]
discretised_logistic.pixel = "8bit"  # type: ignore[attr-defined]
