"""Toy worlds for evaluation: blocks with a renderer (tests/evaluation/test_other_world.py registers its
own, the truth-free tests these) and as labelled files without one, an oracle image model of them, and
a world with continuous factors."""

import numpy as np
import torch

from cvaeq import hookimpl
from cvaeq.world import Factor, World

FACTORS = (Factor("kind", labels=("bar", "dot")), Factor("x", values=[0, 1 / 3, 2 / 3, 1]),
           Factor("y", values=[0.0, 0.5, 1.0]))


def render(classes):
    """A 2x2 block (kind=bar) or one pixel (kind=dot) at (2y, 2x) of a 6x8 image."""
    out = np.zeros((len(classes), 6, 8), np.uint8)
    for i, (kind, x, y) in enumerate(np.asarray(classes, dtype=np.int64)):
        out[i, 2 * y: 2 * y + (2 if kind == 0 else 1), 2 * x: 2 * x + (2 if kind == 0 else 1)] = 1
    return out


STORY = """
world = "{world}"
name = "toy"
latent_dim = 1
[factors.kind]
parents = []
probs = [0.6, 0.4]
[factors.x]
parents = ["kind"]
[factors.x.probs]
bar = [0.4, 0.3, 0.2, 0.1]
dot = [0.1, 0.2, 0.3, 0.4]
[factors.y]
parents = []
probs = "uniform"
"""

RENDERED = World("toy_tf_blocks", FACTORS, image_shape=(6, 8), render=render)


def load_files(path):
    """The labelled pictures of the renderer-less twin: 480 blocks drawn from the story, as if read from files."""
    from cvaeq.story import story_from_text

    story = story_from_text(STORY.format(world="toy_tf_blocks"))
    classes = story.sample(480, np.random.default_rng(7))
    return render(classes), classes.astype(np.float64)


FILES = World("toy_tf_files", FACTORS, image_shape=(6, 8), render=None, load_real=load_files, data=None)


def move_y(pictures, values):
    """The blocks moved to row 2y (their own drawing: y is the last step of it, and nothing depends on it)."""
    out = np.zeros_like(pictures)
    for i, (picture, y) in enumerate(zip(pictures, np.asarray(values, dtype=np.int64))):
        rows = np.flatnonzero(picture.any(1))
        out[i] = np.roll(picture, 2 * y - (rows[0] if len(rows) else 2 * y), axis=0)
    return out


#: The files world, knowing how y was drawn into its pictures (World.redraw): under do(y) it has the truth.
REDRAWN = World("toy_tf_redrawn", FACTORS, image_shape=(6, 8), render=None, load_real=load_files, data=None,
                redraw={"y": move_y})


class ToyWorlds:
    @hookimpl
    def register_worlds(self, register):
        register(RENDERED)
        register(FILES)
        register(REDRAWN)


class Oracle:
    """Decoder = the blocks' drawing (clamped); q(factors | X) = the nearest of the 24 drawings.
    ``ignore``: a broken decoder that draws that factor at class 0 whatever it is asked."""

    latent_dim = 1

    def __init__(self, world, ignore=None):
        self.world, self.ignore = world, ignore
        self.classes = RENDERED.classes_array_of(np.arange(RENDERED.n_images))
        self.images = torch.from_numpy(render(self.classes)).float().reshape(len(self.classes), -1)

    def decode_probs(self, classes, z):
        classes = classes.numpy().copy()
        if self.ignore is not None:
            classes[:, FACTORS.index(next(f for f in FACTORS if f.name == self.ignore))] = 0
        return torch.from_numpy(render(classes)).float().clamp(0.001, 0.999)

    def factor_logits(self, x):
        flat = x.reshape(len(x), -1).float()
        best = self.classes[torch.cdist(flat, self.images).argmin(1).numpy()]
        out = {}
        for i, f in enumerate(self.world.names):
            logits = torch.full((len(x), self.world.sizes[f]), -12.0)
            logits[torch.arange(len(x)), torch.from_numpy(best[:, i])] = 0.0
            out[f] = logits
        return out

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


# a world with continuous factors: a grey square of side `size` px and grey level `bright`
CONTINUOUS = World(
    "toy_tf_squares",
    (Factor("kind", labels=("a", "b")), Factor("size", low=0.0, high=8.0, unit="px"),
     Factor("bright", low=0.0, high=255.0)),
    image_shape=(12, 12),
    pixel="8bit",
)


class SquaresStory:
    """The graph the predictors read (size -> bright; kind alone), without a story file."""

    world = CONTINUOUS

    def parents(self, factor):
        return {"bright": ("size",)}.get(factor, ())


def squares(n, seed):
    """``(pictures, values)``: a square of side ``size`` (partial pixels shaded) at grey ``bright``,
    one corner for kind a and the opposite one for kind b; bright grows with size, plus noise."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    size = rng.uniform(1.0, 7.0, n)
    bright = np.clip(60 + 20 * size + rng.normal(0, 15, n), 0, 255)
    cover = np.clip(size[:, None] - np.arange(12)[None, :], 0, 1)  # (n, 12): how much of each column/row
    square = cover[:, :, None] * cover[:, None, :]
    pictures = np.where(kind[:, None, None] == 0, square, square[:, ::-1, ::-1]) * bright[:, None, None]
    return np.round(pictures).astype(np.uint8), np.stack([kind, size, bright], 1).astype(np.float64)
