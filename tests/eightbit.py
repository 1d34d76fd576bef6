"""A tiny 8-bit RGB world and a hand-written 8-bit image model, for the tests of grey and colour pixels.

``swatch``: a square of one of three colours and three sizes, centred on a grey
8×8 background, its edge anti-aliased (levels between the colour and the
grey), so its pictures use more than two levels per channel. Its story: the
hue picks the size. The model (no training): ``loc`` is the true picture on the
[0, 1] scale, shifted by ``0.003 * z``, ``log_scale`` -4 (a scale of about five
levels); q(factors | X) matches the picture against the nine templates;
q(Z | X, factors) is the prior.

``files_world(folder)``: the same world without its renderer, its nine
pictures written into ``folder`` as PNG files with a factors.csv (rows 6-8
held out), and ``FILES_STORY`` its story: what a world of real labelled
pictures looks like to the rest of cvaeq.

``continuous_scm(model)``: a 2×2 8-bit world with a categorical ``c``, a
continuous ``t`` (standard normal) and Z, its picture from ``model``: the
tiny world of the tests of continuous proposals and their refinement.
"""

from __future__ import annotations

import numpy as np
import torch

from cvaeq import hookimpl
from cvaeq.world import Factor, World

HUES = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 70, 220)}
SIZES = (2, 4, 6)
SHAPE = (3, 8, 8)
GREY = 128


def render(classes: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 3, 8, 8)`` pictures of ``(N, 2)`` classes (hue, size)."""
    classes = np.asarray(classes)
    out = np.full((len(classes), *SHAPE), GREY, dtype=np.float64)
    centre = np.abs(np.arange(8) - 3.5)
    for i, (h, s) in enumerate(classes):
        half = SIZES[int(s)] / 2
        cover = np.clip(half + 0.5 - centre, 0, 1)  # a soft edge: half-covered pixels
        alpha = np.outer(cover, cover)
        colour = np.array(list(HUES.values())[int(h)], dtype=np.float64)
        out[i] = GREY * (1 - alpha) + colour[:, None, None] * alpha
    return np.rint(out).astype(np.uint8)


WORLD = World("swatch", (Factor("hue", labels=list(HUES)), Factor("size", values=list(SIZES))),
              image_shape=SHAPE, render=render, pixel="8bit")

STORY = 'world = "swatch"\nlatent_dim = 1\n[factors.hue]\nprobs = [0.5, 0.3, 0.2]\n' \
        '[factors.size]\nparents = ["hue"]\n[factors.size.probs]\nred = [0.7, 0.2, 0.1]\n' \
        'green = [0.1, 0.8, 0.1]\nblue = [0.2, 0.2, 0.6]\n'


class SwatchPlugin:
    @hookimpl
    def register_worlds(self, register):
        register(WORLD)


ALL = np.array([[h, s] for h in range(3) for s in range(3)])
TEMPLATES = torch.as_tensor(render(ALL), dtype=torch.float32) / 255


class SwatchModel(torch.nn.Module):
    """A hand-written 8-bit image model of ``swatch`` (see the module doc)."""

    latent_dim = 1
    pixel = "8bit"

    def __init__(self, log_scale: float = -4.0, shift: float = 0.003, sharpness: float = 400.0):
        super().__init__()
        self.log_scale, self.shift, self.sharpness = log_scale, shift, sharpness

    def pixel_levels(self, classes, z):
        loc = TEMPLATES[classes[:, 0] * 3 + classes[:, 1]] + self.shift * z[:, :1, None, None]
        return loc, torch.full_like(loc, self.log_scale)

    def factor_logits(self, x):
        d = ((x.reshape(len(x), 1, -1) - TEMPLATES.reshape(1, 9, -1)) ** 2).mean(-1)  # [S, 9]
        joint = (-self.sharpness * d).reshape(len(x), 3, 3)
        return {"hue": joint.logsumexp(2), "size": joint.logsumexp(1)}

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 1), torch.ones(len(x), 1)


FILES_STORY = STORY.replace('"swatch"', '"swatch_files"')


def files_world(folder) -> World:
    """``swatch_files``: the swatch world with no renderer, its nine pictures PNG files in ``folder``."""
    from cvaeq.viz import png_bytes

    lines = ["file,hue,size"]
    for i, (h, s) in enumerate(ALL):
        (folder / f"p{i}.png").write_bytes(png_bytes(render(np.array([[h, s]]))[0].transpose(1, 2, 0)))
        lines.append(f"p{i}.png,{list(HUES)[h]},{SIZES[s]}")
    (folder / "factors.csv").write_text("\n".join(lines) + "\n")
    return World("swatch_files", WORLD.factors, WORLD.image_shape, pixel="8bit", data=folder, test_rows=range(6, 9))


class FilesPlugin:
    """Registers a ``files_world``."""

    def __init__(self, world: World):
        self.world = world

    @hookimpl
    def register_worlds(self, register):
        register(self.world)


def continuous_scm(model):
    """The SCM of the tiny continuous world: ``c`` uniform over 2 classes, ``t = noise`` ~ N(0, 1),
    a 1-dimensional Z, and X the 2×2 picture ``model`` decodes from (c, t, Z)."""
    from cvaeq.graph import CausalGraph
    from cvaeq.invertible import Law
    from cvaeq.mechanisms.continuous import ContinuousMechanism
    from cvaeq.mechanisms.gaussian import gaussian_latent
    from cvaeq.mechanisms.gumbel import GumbelMax
    from cvaeq.mechanisms.levels_image import discretised_logistic_image
    from cvaeq.scm import SCM

    graph = CausalGraph([("c", "X"), ("t", "X"), ("Z", "X")], nodes=("Z", "c", "t", "X"))
    law = Law((), "identity", noise=Law().noise)
    mechanisms = {
        "c": GumbelMax((), torch.tensor([0.5, 0.5], dtype=torch.float64)),
        "t": ContinuousMechanism((), law, low=-10, high=10),
        "Z": gaussian_latent(dim=1),
        "X": discretised_logistic_image(model, parents=("c", "t", "Z"), factors=("c", "t"), shape=(2, 2)),
    }
    return SCM(graph, mechanisms)
