"""Benchmark: an image counterfactual on a 64×64×3 colour world, as a Python user gets it (repeated ``ask``).

``ask("P(X | do(F=v), X=img)", image=..., samples=100, seed=s)`` over seeds:
100 particles of 12,288 8-bit pixels and channels each, abducted exactly
(:func:`cvaeq.levels.abduct`) and replayed under the intervention. The model
is the shipped colour model (``cvaeq/weights/colour_pendulum.safetensors``)
when it is installed, else a stand-in: a world of a coloured disc at one of
eight places over a shaded background, and an 8-bit model whose decoder has
the shape and cost of the causal VAE's full-picture decoder (the pendulum's
``FullImageCausalVAE``: an MLP to 64 cells of 32 channels, a per-cell MLP to
the cell's 8×8 pixels), with two outputs (loc, log_scale) per channel:
6×64 per cell instead of the binary decoder's 64. Its proposals read the
picture exactly (template matching), as a trained encoder nearly does.

Prints the median wall time in ms (and the process's CPU time, which moves
less with a shared machine's load), the threads, the pages the process
faulted in afresh per ask (memory handed back to the system and taken again:
``cvaeq.allocator``), the load average before and after, the machine's speed
(:func:`machine_reference`), and a profile of one call (cProfile, the functions taking the most
time themselves)::

    python benchmarks/colour_counterfactual.py [--particles 100] [--repeats 20] [--threads 1] [--parts]
        [--compare-q] [--by-story] [--new-pictures]

``--parts`` also prints the CPU time of each piece (one decoding, the
uniforms, ``levels.abduct``, ``levels.quantise``) on the stand-in;
``--compare-q`` times the same asks with the latent proposal unrefined
(q(Z | X, factors) as the model gives it), interleaved seed by seed, with
the median ESS of each. ``--new-pictures`` times, interleaved with those, asks
about a new picture each time (its factors drawn from the story): an ask about
a picture asked about before finds its Laplace fits kept
(``cvaeq.mechanisms.latent_refinement.FitCache``), a new picture pays for them. ``--by-story`` asks by the story's name
(``ask(..., story="colour_pendulum")``, as docs/cli.md's Python example
does: the story is read again by every ask, and its shipped checkpoint
found) instead of by the checkpoint's path (kept loaded).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

SHIPPED = Path(__file__).resolve().parent.parent / "cvaeq" / "weights" / "colour_pendulum.safetensors"
HUES = [(220, 50, 40), (40, 180, 70), (60, 80, 220)]
PLACES = 8


def render(classes: np.ndarray) -> np.ndarray:
    """The stand-in world: ``(N, 3, 64, 64)`` uint8, an anti-aliased disc over a vertical shade."""
    classes = np.asarray(classes)
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    shade = (np.linspace(200, 120, 64)[:, None] * np.ones((1, 64)))[None]  # [1, 64, 64]
    out = np.empty((len(classes), 3, 64, 64), dtype=np.uint8)
    for i, (h, p) in enumerate(classes):
        cx = 8 + 48 * int(p) / (PLACES - 1)
        alpha = np.clip(10.5 - np.hypot(xx - cx, yy - 32), 0, 1)
        colour = np.array(HUES[int(h)], dtype=np.float64)[:, None, None]
        out[i] = np.rint(shade * (1 - alpha) + colour * alpha)
    return out


def standin_world():
    from cvaeq.world import Factor, World

    return World("colour_standin", (Factor("hue", labels=["red", "green", "blue"]),
                                    Factor("place", values=list(range(PLACES)))),
                 image_shape=(3, 64, 64), render=render, pixel="8bit")


STORY = ('world = "colour_standin"\nlatent_dim = 2\n[factors.hue]\nprobs = [0.4, 0.3, 0.3]\n'
         '[factors.place]\nparents = ["hue"]\n[factors.place.probs]\n'
         'red = [0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]\n'
         'green = [0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125]\n'
         'blue = [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3]\n')


class StandIn(nn.Module):
    """An 8-bit model of the stand-in world with the causal VAE's decoder cost (see the module doc)."""

    latent_dim = 2
    pixel = "8bit"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        width = 3 + PLACES
        self.dec_mlp = nn.Sequential(nn.Linear(width + self.latent_dim, 512), nn.SiLU(), nn.Linear(512, 512), nn.SiLU(),
                                     nn.Linear(512, 64 * 32))
        self.cell = nn.Sequential(nn.SiLU(), nn.Linear(32, 64), nn.SiLU(), nn.Linear(64, 6 * 64))
        self.read = nn.Linear(3 * 64 * 64, 256)  # an encoder's cost; the proposal itself matches templates
        grid = np.array([[h, p] for h in range(3) for p in range(PLACES)])
        self.register_buffer("templates", torch.as_tensor(render(grid), dtype=torch.float32) / 255)

    def onehot(self, classes):
        return torch.cat([nn.functional.one_hot(classes[:, 0], 3), nn.functional.one_hot(classes[:, 1], PLACES)], -1)

    def pixel_levels(self, classes, z):
        s = classes.shape[0]
        h = self.dec_mlp(torch.cat([self.onehot(classes).float(), z], -1)).view(s * 64, 32)
        cells = self.cell(h).view(s, 8, 8, 6, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(s, 6, 64, 64)
        base = self.templates[classes[:, 0] * PLACES + classes[:, 1]]
        loc = base + 0.002 * torch.tanh(cells[:, :3])
        return loc, -4.5 + 0.1 * torch.tanh(cells[:, 3:])

    def factor_logits(self, x):
        self.read(x.reshape(len(x), -1))
        d = ((x.reshape(len(x), 1, -1) - self.templates.reshape(1, 3 * PLACES, -1)) ** 2).mean(-1)
        joint = (-2000 * d).reshape(len(x), 3, PLACES)
        return {"hue": joint.logsumexp(2), "place": joint.logsumexp(1)}

    def z_posterior(self, x, classes):
        return torch.zeros(len(x), 2), torch.ones(len(x), 2)


def setup():
    """``(ask keyword arguments, query, what it is)``: the shipped colour model, else the stand-in."""
    from cvaeq.story import load_story, story_from_text

    if SHIPPED.exists():
        from cvaeq.loading import load_mechanisms

        mech = load_mechanisms(str(SHIPPED))
        world, story = mech.story.world, mech.story
        root = next(f for f in story.factors if not story.graph.parents(f) and story.graph.children(f))
        value = world.label(root, world.factor(root).size - 1)
        image = world.render_checked(world.row({f: 0 for f in world.names}))[0]
        return ({"model": str(SHIPPED), "image": image}, f"P(X | do({root}={value}), X=img)",
                f"shipped model {SHIPPED.name}")
    from cvaeq.plugins import get_plugin_manager

    class Plugin:
        from cvaeq import hookimpl

        @hookimpl
        def register_worlds(self, register):
            register(standin_world())

    get_plugin_manager().register(Plugin(), name="colour-standin-benchmark")
    story = story_from_text(STORY)
    model = StandIn().eval().requires_grad_(False)
    del load_story
    return ({"model": model, "story": story, "image": render(np.array([[0, 2]]))[0]},
            "P(X | do(hue=blue), X=img)", "stand-in model (causal VAE decoder cost, 6 outputs per pixel)")


def new_pictures(kw: dict, count: int) -> list:
    """``count`` pictures of the shipped model's world, their factors drawn from its story (seed 0):
    one per ask with ``--new-pictures``, so that no ask finds the Laplace fits of its picture
    kept from an earlier one (cvaeq.mechanisms.latent_refinement.FitCache)."""
    from cvaeq.loading import load_mechanisms

    story = load_mechanisms(kw["model"]).story
    classes = story.sample(count, np.random.default_rng(0))
    return list(story.world.render_checked(classes))


def parts(particles: int) -> str:
    """CPU milliseconds (median of 15) of the pieces of one such counterfactual, on the stand-in:
    one decoding (the engine decodes twice: the factual parents, then the counterfactual
    ones), the uniforms, the abduction of the pixel noise with its weight, the replay."""
    from cvaeq import levels
    from cvaeq.uniforms import uniforms

    model = StandIn().eval().requires_grad_(False)
    c = torch.stack([torch.zeros(particles, dtype=torch.long), torch.full((particles,), 2)], -1)
    z = torch.randn(particles, 2)
    img = torch.as_tensor(render(np.array([[0, 2]]))[0])[None]

    def cpu(fn) -> float:
        fn()
        times = []
        for _ in range(15):
            t0 = time.process_time()
            fn()
            times.append((time.process_time() - t0) * 1000)
        return statistics.median(times)

    with torch.no_grad():
        loc, log_scale = model.pixel_levels(c, z)
        r = torch.rand(loc.shape)
        eps, _ = levels.abduct(img, loc, log_scale, r)
        figures = {"decoder (one call)": cpu(lambda: model.pixel_levels(c, z)),
                   "uniforms (cvaeq.uniforms)": cpu(lambda: uniforms(loc.shape)),
                   "levels.abduct (noise and log p)": cpu(lambda: levels.abduct(img, loc, log_scale, r)),
                   "levels.quantise (the replay)": cpu(lambda: levels.quantise(loc, log_scale, eps))}
    return "; ".join(f"{k} {v:.1f} ms" for k, v in figures.items())


#: asks profiled
PROFILED = 5

#: (what, function name, file ending): the phases of an image counterfactual, as cProfile names them
PHASES = (
    ("the whole ask", "ask", "query/answer.py"),
    ("proposal q(factors, Z | X)", "propose", "mechanisms/image.py"),
    ("  of which the latent's Laplace fit", "laplace_fit", "mechanisms/latent_refinement.py"),
    ("weights (decode + bins)", "weigh", "mechanisms/levels_image.py"),
    ("the bins of the evidence (levels.Bins.of)", "of", "levels.py"),
    ("pixel noise (uniforms + inverse CDF)", "draw", "levels.py"),
    ("counterfactual pixels (decode + quantise)", "assign", "mechanisms/levels_image.py"),
    ("levels.quantise", "quantise", "levels.py"),
    ("every decoding (the network, in its own order)", "level_blocks", "model/networks.py"),
    ("pictures between the decoder's order and theirs", "from_level_blocks", "model/networks.py"),
    ("the answer's summary (mean picture, ...)", "_summarise", "query/answer.py"),
)


def phases(prof: cProfile.Profile) -> str:
    """The cumulative time of each of :data:`PHASES` per ask, from the profile."""
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    out = []
    for what, name, file in PHASES:
        cum = sum(v[3] for (f, _, n), v in stats.items() if n == name and f.endswith(file))
        out.append(f"{what} {cum * 1000 / PROFILED:.1f}")
    return "; ".join(out)


class _refined:
    """A context in which the 8-bit image refines q(Z | X, factors) per picture (the default)
    or not (``on=False``: q as the model gives it). A tree without the refinement has one way."""

    def __init__(self, on: bool) -> None:
        self.on, self.saved = on, None

    def __enter__(self):
        try:
            from cvaeq.mechanisms.image import BernoulliImage
            from cvaeq.mechanisms.levels_image import DiscretisedLogisticImage
        except ImportError:
            return self
        if not self.on and "_latent_draw" in vars(DiscretisedLogisticImage):
            self.saved = DiscretisedLogisticImage._latent_draw
            DiscretisedLogisticImage._latent_draw = BernoulliImage._latent_draw
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            from cvaeq.mechanisms.levels_image import DiscretisedLogisticImage

            DiscretisedLogisticImage._latent_draw = self.saved
            self.saved = None


def machine_reference() -> float:
    """ms for a fixed piece of work on torch's threads (30 products of two 256×256 float32
    matrices and 30 exps of 2^17 floats, the median of 5 tries): the machine's speed at
    the time. On this project's shared 2-core machine it moved from 4.0 to 9.1 ms between the
    rounds of one before/after run (2026-12-08), and an ask's median with it: a median is read
    beside it."""
    g = torch.Generator().manual_seed(0)
    a, x = torch.randn(256, 256, generator=g), torch.randn(1 << 17, generator=g)
    tries = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(30):
            a @ a
            torch.exp(x)
        tries.append((time.perf_counter() - t0) * 1000)
    return statistics.median(tries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parts", action="store_true", help="Also time the pieces (CPU ms, on the stand-in).")
    ap.add_argument("--compare-q", action="store_true",
                    help="Also time the same asks with q(Z | X, factors) unrefined, interleaved seed by seed.")
    ap.add_argument("--by-story", action="store_true",
                    help="Ask by the story's name instead of the shipped checkpoint's path.")
    ap.add_argument("--new-pictures", action="store_true",
                    help="Ask about a new picture each time (factors drawn from the story), interleaved with "
                         "the same picture: an ask about a picture asked about before reuses its Laplace fits.")
    args = ap.parse_args()
    from cvaeq.query.answer import ask
    from cvaeq.threads import use_threads

    threads = use_threads(args.threads)
    kw, query, what = setup()
    if args.by_story and isinstance(kw.get("model"), str):
        kw = {"story": "colour_pendulum", "image": kw["image"]}
        what += ", asked by the story's name"

    fresh = new_pictures(kw, args.repeats + 1) if args.new_pictures and isinstance(kw.get("model"), str) else None

    def once(seed: int, picture=None):
        return ask(query, samples=args.particles, seed=seed, threads=threads,
                   **(kw if picture is None else {**kw, "image": picture}))

    first = once(0)  # warm-up (and the answer's shape, printed)
    reference0 = machine_reference()
    load0 = os.getloadavg()
    ways = {"": _refined(True)} | ({" with q unrefined": _refined(False)} if args.compare_q else {})
    ways |= {" about a new picture each time": _refined(True)} if fresh is not None else {}
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    wall: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    ess: dict[str, list[float]] = {k: [] for k in ways}
    for seed in range(1, args.repeats + 1):
        for name, way in ways.items():
            with way:
                picture = fresh[seed] if name == " about a new picture each time" else None
                t0, c0 = time.perf_counter(), time.process_time()
                ess[name].append(once(seed, picture).ess)
                wall[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.process_time() - c0) * 1000)
    load1 = os.getloadavg()
    reference = (reference0 + machine_reference()) / 2
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / (args.repeats * len(ways))
    print(f"{query} on {what}: {args.particles} particles x {int(np.prod(first.sample_images.shape[1:]))} "
          f"pixel-channels, ESS {first.ess:.1f}, {threads} thread(s), {args.repeats} repeats, "
          f"{faults:.0f} pages faulted afresh per ask")
    for name in ways:
        print(f"median ask(){name} {statistics.median(wall[name]):.1f} ms wall, {statistics.median(cpu[name]):.1f} "
              f"ms CPU, ESS {statistics.median(ess[name]):.1f}; load average {load0[0]:.2f} -> {load1[0]:.2f}; "
              f"machine reference {reference:.2f} ms")
    if args.parts:
        print("CPU per piece, stand-in, " + parts(args.particles) + f"; load average {os.getloadavg()[0]:.2f}")
    prof = cProfile.Profile(time.process_time)  # CPU time: what waiting for a shared core does not inflate
    prof.enable()
    for seed in range(args.repeats + 1, args.repeats + 1 + PROFILED):
        once(seed)
    prof.disable()
    print(f"where the time goes, CPU ms per ask() (cProfile, cumulative, {PROFILED} asks; nested parts overlap): "
          + phases(prof))
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    print(f"profile of {PROFILED} ask() (cProfile, CPU time spent in the function itself):")
    print("\n".join(lines[start - 1:start + 15]))


if __name__ == "__main__":
    main()
