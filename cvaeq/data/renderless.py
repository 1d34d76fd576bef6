"""What a world without a renderer cannot do, said the same way everywhere.

A world of real labelled pictures (``render=None``: Morpho-MNIST) cannot draw
a picture from factors, so none of its counterfactuals has a known true
picture. Every place that would read the renderer (``cvaeq data build``,
``data show FACTORS``, ``--image FACTORS``, evaluation's truth, the explorer's
true-counterfactual panel, the notebook display) says so with
:func:`no_truth`'s sentence, and what to do instead. The one exception, a
``do()`` of a factor the world redraws in its own pictures (``World.redraw``:
Morpho-MNIST's intensity), is said with :func:`redrawn_truth`'s.
"""

from __future__ import annotations

from ..errors import DataError
from ..world import World

__all__ = ["no_truth", "redrawn_truth", "require_renderer"]


def no_truth(world: World) -> str:
    """The sentence every face shows for a world without a renderer, in place of a true picture.

    >>> from cvaeq.world import get_world
    >>> no_truth(get_world("morphomnist"))  # doctest: +NORMALIZE_WHITESPACE
    "world 'morphomnist' has no renderer: its pictures are real labelled files, so no picture can be drawn
    from factors, and a counterfactual has a known true picture only where the world redraws its
    intervened factor"
    """
    return world.no_renderer


def redrawn_truth(world: World, factor: str) -> str:
    """The sentence for a counterfactual picture under ``do(factor)`` where ``world``, without a
    renderer, redraws ``factor`` in its pictures: the truth exists, and where it is shown.

    >>> from cvaeq.world import get_world
    >>> redrawn_truth(get_world("morphomnist"), "intensity")  # doctest: +NORMALIZE_WHITESPACE
    "world 'morphomnist' has no renderer, but it redraws intensity in its pictures as its data were made:
    the true counterfactual is the evidence redrawn (cvaeq serve shows it beside the model's; cvaeq eval
    scores it)"
    """
    return (
        f"world {world.name!r} has no renderer, but it redraws {factor} in its pictures as its data were made: "
        "the true counterfactual is the evidence redrawn (cvaeq serve shows it beside the model's; cvaeq eval "
        "scores it)"
    )


def require_renderer(world: World, doing: str, instead: str = "") -> None:
    """A DataError saying why ``doing`` needs a renderer ``world`` lacks, and what to do ``instead``."""
    if not world.has_renderer:
        raise DataError(f"{doing}: {no_truth(world)}" + (f"; {instead}" if instead else ""))
