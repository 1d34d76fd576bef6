"""cvaeq plugin: the ``pong`` world and its story ``pong``.

A worked example of a third-party world (docs/plugins.md, "Bring your own
world"): :mod:`cvaeq_pong.world` declares four factors and a renderer of a
few lines; ``pong.toml`` beside this file tells the story (the paddle chases
the ball); the two hooks below hand both to cvaeq. Installed, the entry point
``cvaeq-pong`` in ``pyproject.toml`` makes cvaeq load this module.

>>> WORLD.names, WORLD.n_images
(('ball', 'ballX', 'ballY', 'paddleX'), 768)
"""

from __future__ import annotations

from pathlib import Path

from cvaeq import hookimpl

from .world import BALLS, STORY_NAME, WORLD, render

__all__ = ["WORLD", "render", "BALLS", "STORY_NAME", "STORY_PATH", "register_worlds", "register_stories"]

#: The story file: the paddle chases the ball.
STORY_PATH = Path(__file__).resolve().parent / "pong.toml"


@hookimpl
def register_worlds(register):
    register(WORLD)


@hookimpl
def register_stories(register):
    register(STORY_NAME, str(STORY_PATH))
