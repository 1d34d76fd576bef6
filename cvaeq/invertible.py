"""Invertible mechanisms of continuous factors: ``value = f(parents, noise)``, monotone in the noise.

One form covers DeepSCM's Morpho-MNIST SCM exactly and the mechanisms cvaeq
learns from labelled data (:func:`fit_law`):

    value = offset + gain * link(bias + sum_p weight_p(parent_p) + scale * noise)

with ``link`` one of ``identity``, ``sigmoid`` or ``exp`` (each strictly
increasing), ``gain > 0`` and ``scale > 0``, so the value is strictly
increasing in the noise and the noise is a closed-form function of the value:

    noise = (link^-1((value - offset) / gain) - bias - sum_p weight_p(parent_p)) / scale

Abduction is therefore exact (the noise *is* the inverse; no sampling), and
the density of a value is the noise's base density at the inverse times the
Jacobian ``|d noise / d value| = 1 / (gain * scale * link'(u))``.

A parent enters through ``weight_p``: a number times its value for a
continuous or numeric-grid parent (the grid's number of its class), a number
per label for a categorical one (``{"0": 0.1, "7": -0.3}``, absent labels 0).
The noise is a named base distribution: ``normal`` (0, 1), ``logistic``
(0, 1), ``uniform`` (0, 1) or ``gamma`` (``shape``, ``rate``).

A :class:`Law` is plain data (:meth:`Law.to_dict` is JSON and the
``[factors.NAME.continuous]`` table of a story, :meth:`Law.from_dict` reads
both); its arithmetic is numpy float64 here, shared by the story's sampler
and by the SCM's mechanism (:mod:`cvaeq.mechanisms.continuous`), so both
give the same numbers. This module imports neither torch nor pyro.

DeepSCM's intensity, ``64 + 191 * sigmoid(0.5 * e + 2 * thickness - 5)``:

>>> law = Law.from_dict({"link": "sigmoid", "offset": 64, "gain": 191, "bias": -5,
...                      "weights": {"thickness": 2}, "scale": 0.5, "noise": "normal"}, ("thickness",))
>>> import numpy as np
>>> terms = law.terms({"thickness": np.array([2.5, 3.0])}, {"thickness": None})  # 2 * thickness
>>> v = law.assign(terms, np.array([0.0, 1.0]))
>>> v.round(4).tolist(), (law.noise_of(v, terms).round(12) + 0).tolist()
([159.5, 220.1567], [0.0, 1.0])

The arithmetic takes the parents' *terms* (each weighted parent's part of
the location, :meth:`Law.terms`), so that it never needs to know what kind
of factor a parent is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import StoryError

__all__ = [
    "Law",
    "Learn",
    "Noise",
    "LINKS",
    "NOISES",
    "fit_law",
    "fit_laws",
    "learn_spec",
    "LawError",
    "kind_of",
    "law_contribution",
]

#: The links, each strictly increasing.
LINKS = ("identity", "sigmoid", "exp")
#: The base noise distributions and their parameters.
NOISES = {"normal": (), "logistic": (), "uniform": (), "gamma": ("shape", "rate")}
#: The keys of a law's table (a story's ``[factors.NAME.continuous]``, a fitted law's JSON).
LAW_KEYS = ("link", "offset", "gain", "bias", "weights", "scale", "noise")
#: The keys of a learned law's table that are a guess at its numbers (the fit replaces them).
GUESS_KEYS = ("bias", "weights", "scale")
#: Doublings (and twice as many halvings) allowed in moving the abducted noise to the float whose
#: forward map is the value exactly (:meth:`Law.abduct`): float64 spans fewer than 2**11 binades.
REPLAY_STEPS = 64
#: Most parameters a law may hold (a categorical parent's weights count one per label).
MAX_LAW_NUMBERS = 100_000


class LawError(StoryError):
    """A law's table is wrong; the message says which key and what to write."""


@dataclass(frozen=True)
class Noise:
    """A base noise distribution: ``normal``, ``logistic``, ``uniform`` or ``gamma(shape, rate)``."""

    kind: str = "normal"
    shape: float = 1.0
    rate: float = 1.0

    @property
    def low(self) -> float:
        """The lower end of its support (``-inf``, or 0 for uniform and gamma)."""
        return 0.0 if self.kind in ("uniform", "gamma") else -math.inf

    @property
    def high(self) -> float:
        return 1.0 if self.kind == "uniform" else math.inf

    def log_prob(self, n: np.ndarray) -> np.ndarray:
        """The base log-density at ``n`` (float64; ``-inf`` off the support)."""
        n = np.asarray(n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "normal":
                out = -0.5 * n * n - 0.5 * math.log(2 * math.pi)
            elif self.kind == "logistic":
                out = -np.abs(n) - 2 * np.log1p(np.exp(-np.abs(n)))
            elif self.kind == "uniform":
                out = np.zeros_like(n)
            else:
                a, b = self.shape, self.rate
                out = a * math.log(b) - math.lgamma(a) + (a - 1) * np.log(n) - b * n
            inside = (n > self.low) & (n < self.high) & np.isfinite(n)
            return np.where(inside, out, -np.inf)

    def median(self) -> float:
        """A point inside the support (the noise an impossible value is given, with weight 0)."""
        if self.kind == "uniform":
            return 0.5
        if self.kind == "gamma":
            return self.shape / self.rate
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws with numpy's ``rng`` (the story's sampler)."""
        if self.kind == "normal":
            return rng.standard_normal(n)
        if self.kind == "logistic":
            return rng.logistic(size=n)
        if self.kind == "uniform":
            return rng.random(n)
        return rng.gamma(self.shape, 1.0 / self.rate, size=n)

    def to_value(self) -> str | dict[str, Any]:
        """As written in a law's table: a name, or ``{kind, shape, rate}`` for gamma."""
        if self.kind == "gamma":
            return {"kind": "gamma", "shape": self.shape, "rate": self.rate}
        return self.kind


@dataclass(frozen=True)
class Law:
    """``value = offset + gain * link(bias + sum_p weight_p(parent_p) + scale * noise)``.

    :ivar parents: the parent names, in order.
    :ivar weights: ``{parent: number}`` (numeric or continuous parents) or
        ``{parent: {label: number}}`` (categorical parents); a parent left out weighs 0.
    """

    parents: tuple[str, ...] = ()
    link: str = "identity"
    offset: float = 0.0
    gain: float = 1.0
    bias: float = 0.0
    weights: Mapping[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    noise: Noise = field(default_factory=Noise)

    # ------------------------------------------------------------ reading

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], parents: Sequence[str]) -> Law:
        """A law from its table (a story's ``[factors.NAME.continuous]`` or a fitted
        law's JSON); anything wrong is a :class:`LawError` saying which key and what to write."""
        if not isinstance(spec, Mapping):
            raise LawError('the continuous form must be a table, e.g. { link = "identity", noise = "normal" }')
        extra = sorted(set(spec) - set(LAW_KEYS))
        if extra:
            raise LawError(f"unknown key {extra[0]!r} in the continuous form; allowed: {', '.join(LAW_KEYS)}")
        link = spec.get("link", "identity")
        if link not in LINKS:
            raise LawError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
        numbers = {k: _number(spec.get(k, d), k) for k, d in (("offset", 0.0), ("gain", 1.0), ("bias", 0.0))}
        scale = _number(spec.get("scale", 1.0), "scale")
        if numbers["gain"] <= 0 or scale <= 0:
            raise LawError("gain and scale must be > 0 (the value must increase with the noise)")
        weights = spec.get("weights", {})
        if not isinstance(weights, Mapping):
            raise LawError("weights must be a table keyed by parent, e.g. weights = { thickness = 2 }")
        checked: dict[str, Any] = {}
        for p, w in weights.items():
            if p not in parents:
                raise LawError(f"weights names {p!r}, which is not a parent; parents: {', '.join(parents) or 'none'}")
            if isinstance(w, Mapping):
                if len(w) > MAX_LAW_NUMBERS:
                    raise LawError(f"weights.{p} has {len(w)} entries; at most {MAX_LAW_NUMBERS}")
                checked[p] = {str(k): _number(v, f"weights.{p}.{k}") for k, v in w.items()}
            else:
                checked[p] = _number(w, f"weights.{p}")
        return cls(
            tuple(parents),
            link,
            numbers["offset"],
            numbers["gain"],
            numbers["bias"],
            checked,
            scale,
            _noise(spec.get("noise", "normal")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The law as JSON-ready data, the table :meth:`from_dict` reads (parents aside)."""
        return {
            "link": self.link,
            "offset": self.offset,
            "gain": self.gain,
            "bias": self.bias,
            "weights": {p: dict(w) if isinstance(w, Mapping) else w for p, w in self.weights.items()},
            "scale": self.scale,
            "noise": self.noise.to_value(),
        }

    def terms(self, parents: Mapping[str, np.ndarray], kinds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Each weighted parent's term of the location (:func:`law_contribution`), from its
        raw values (classes, or numbers of a continuous parent) and its kind."""
        return {p: law_contribution(self, p, parents[p], kinds[p]) for p in self.parents if p in self.weights}

    # ------------------------------------------------------------ arithmetic (float64 numpy)

    def _link(self, u: np.ndarray) -> np.ndarray:
        if self.link == "sigmoid":
            return _sigmoid(u)
        if self.link == "exp":
            with np.errstate(over="ignore"):
                return np.exp(u)
        return u

    def _unlink(self, y: np.ndarray) -> np.ndarray:
        """``link^-1(y)`` (NaN where ``y`` is outside the link's range)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.link == "sigmoid":
                inside = (y > 0) & (y < 1)
                out = np.log(y) - np.log1p(-y)
                return np.where(inside, out, np.nan)
            if self.link == "exp":
                return np.where(y > 0, np.log(y), np.nan)
        return y

    def _log_link_slope(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``log link'(u)`` where ``y = link(u)``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.link == "sigmoid":
                return np.log(y) + np.log1p(-y)
            if self.link == "exp":
                return u
        return np.zeros_like(u)

    def location(self, parents: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """``bias + sum_p weight_p(parent_p)`` ``(n,)`` from the parents' terms
        (:meth:`terms`: ``parents`` holds each weighted parent's term already)."""
        loc = np.full(n, self.bias, dtype=np.float64)
        for p in self.parents:
            if p in self.weights:
                loc = loc + np.asarray(parents[p], dtype=np.float64)
        return loc

    def assign(self, parents: Mapping[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
        """The value ``(n,)`` float64 from the parents' terms (:meth:`terms`) and the noise."""
        noise = np.asarray(noise, dtype=np.float64)
        u = self.location(parents, len(noise)) + self.scale * noise
        return self.offset + self.gain * self._link(u)

    def noise_of(self, value: np.ndarray, parents: Mapping[str, np.ndarray]) -> np.ndarray:
        """The noise that gives ``value`` (the inverse of :meth:`assign`; NaN off the link's range)."""
        value = np.asarray(value, dtype=np.float64)
        u = self._unlink((value - self.offset) / self.gain)
        return (u - self.location(parents, len(value))) / self.scale

    def log_prob(self, value: np.ndarray, parents: Mapping[str, np.ndarray]) -> np.ndarray:
        """``log p(value | parents)`` ``(n,)``: the noise's base log-density at the
        inverse plus the log-Jacobian; ``-inf`` for a value the law cannot give."""
        value = np.asarray(value, dtype=np.float64)
        y = (value - self.offset) / self.gain
        u = self._unlink(y)
        noise = (u - self.location(parents, len(value))) / self.scale
        out = self.noise.log_prob(noise) - math.log(self.gain) - math.log(self.scale) - self._log_link_slope(u, y)
        return np.where(np.isfinite(noise), out, -np.inf)

    def abduct(self, value: np.ndarray, parents: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(noise, log p(value | parents))``: the exact noise (the inverse), and the
        density; a value the law cannot give gets the noise's median and weight ``-inf``.

        The inverse is computed in float64, and the forward map of it can land an
        ulp or so away from ``value``; the noise is then moved to a float whose
        forward map is ``value`` itself where there is one (:meth:`_replaying`,
        by bracketing and bisection), so that replaying the
        noise under the same parents gives the value back bit for bit (a null
        intervention changes nothing, not even in the last bit).
        """
        value = np.asarray(value, dtype=np.float64)
        noise = self.noise_of(value, parents)
        log_p = self.log_prob(value, parents)
        ok = np.isfinite(log_p)
        if ok.any():
            noise[ok] = self._replaying(value[ok], {p: np.asarray(t)[ok] for p, t in parents.items()}, noise[ok])
        return np.where(ok, noise, self.noise.median()), log_p

    def _replaying(self, value: np.ndarray, terms: Mapping[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
        """``noise`` moved to a float whose forward map is exactly ``value`` where one exists
        (the map is monotone: bracket the value by doubling steps, then bisect between
        floats), else to the nearer end of the last bracket."""
        noise = noise.copy()
        at = np.flatnonzero(self.assign(terms, noise) != value)
        if not len(at):
            return noise
        row = {p: np.asarray(t)[at] for p, t in terms.items()}
        v, start = value[at], noise[at]
        up = self.assign(row, start) < v  # the noise must grow
        step = np.maximum(np.abs(start) * 2.0**-52, 2.0**-1074)
        far = start.copy()
        for _ in range(REPLAY_STEPS):  # bracket: far on the other side of v
            far = np.where(up, start + step, start - step)
            got = self.assign(row, far)
            crossed = np.where(up, got >= v, got <= v) | ~np.isfinite(got)
            if crossed.all():
                break
            step = np.where(crossed, step, step * 2)
        lo, hi = np.minimum(start, far), np.maximum(start, far)
        found = np.zeros(len(at), dtype=bool)
        out = start.copy()
        for _ in range(2 * REPLAY_STEPS):  # bisect the floats between lo and hi
            mid = lo + (hi - lo) / 2
            got = self.assign(row, mid)
            hit = (got == v) & ~found
            out[hit], found = mid[hit], found | hit
            below = got < v
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
            if found.all() or not ((mid != lo) & (mid != hi) & ~found).any():
                break
        rest = ~found
        if rest.any():  # the bracket's nearer end, then the floats around it (rounding is not monotone)
            near_lo = np.abs(self.assign(row, lo) - v) <= np.abs(self.assign(row, hi) - v)
            out[rest] = np.where(near_lo, lo, hi)[rest]
            out[rest] = self._scan({p: t[rest] for p, t in row.items()}, v[rest], out[rest])
        noise[at] = out
        return noise

    def _scan(self, row: Mapping[str, np.ndarray], v: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """The float within :data:`REPLAY_STEPS` ulps of ``noise`` (each way) whose forward map is ``v``, if any."""
        out = noise.copy()
        found = np.zeros(len(v), dtype=bool)
        up, down = noise.copy(), noise.copy()
        for _ in range(REPLAY_STEPS):
            up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
            for cand in (up, down):
                hit = (self.assign(row, cand) == v) & ~found
                out[hit], found = cand[hit], found | hit
            if found.all():
                break
        return out


def _sigmoid(u: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(u >= 0, 1 / (1 + np.exp(-np.abs(u))), np.exp(-np.abs(u)) / (1 + np.exp(-np.abs(u))))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LawError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _noise(value: Any) -> Noise:
    """The ``noise`` key: a name (``"normal"``) or a table (``{ kind = "gamma", shape = 10, rate = 5 }``)."""
    kinds = ", ".join(NOISES)
    if isinstance(value, str):
        if value not in NOISES:
            raise LawError(f"noise must be one of {kinds}, got {value!r}")
        if NOISES[value]:
            raise LawError(f'noise {value} needs its parameters: noise = {{ kind = "{value}", shape = 10, rate = 5 }}')
        return Noise(value)
    if not isinstance(value, Mapping) or value.get("kind") not in NOISES:
        raise LawError(f'noise must be one of {kinds} or a table such as {{ kind = "gamma", shape = 10, rate = 5 }}')
    kind = value["kind"]
    params = NOISES[kind]
    extra = sorted(set(value) - {"kind", *params})
    if extra:
        raise LawError(f"noise {kind} takes {', '.join(params) or 'no parameters'}; unknown {extra[0]!r}")
    if not params:
        return Noise(kind)
    missing = [k for k in params if k not in value]
    if missing:
        raise LawError(f"noise {kind} needs {', '.join(params)}; {missing[0]!r} is missing")
    shape, rate = _number(value["shape"], "noise.shape"), _number(value["rate"], "noise.rate")
    if shape <= 0 or rate <= 0:
        raise LawError("noise gamma needs shape > 0 and rate > 0")
    return Noise(kind, shape, rate)


@dataclass(frozen=True)
class Learn:
    """What a story says of a law it leaves to be learned (``learn = true`` in its
    ``[factors.NAME.continuous]`` table): the form the fit keeps, and whether the
    table gives numbers to start from.

    :ivar links: the links :func:`fit_law` may choose from (the table's ``link``, else all of :data:`LINKS`).
    :ivar frame: ``(offset, gain)`` when the table fixes the value's frame, else None (each link's own).
    :ivar guess: whether the table states a guess at the numbers (any of ``bias``, ``weights``,
        ``scale``), or a model's fit has replaced them (:meth:`cvaeq.story.Story.with_laws`):
        the story's sampler and density then have numbers to use.
    """

    links: tuple[str, ...] = LINKS
    frame: tuple[float, float] | None = None
    guess: bool = False


def learn_spec(spec: Any) -> tuple[Learn | None, Any]:
    """``(Learn or None, the table without its learn key)`` of a ``[factors.NAME.continuous]`` table.

    ``learn = true`` leaves the law's numbers to be fitted from labelled data;
    ``link`` then restricts the fit to that link, ``offset`` and ``gain`` (with
    a ``link``) fix the value's frame, and ``noise``, if written, must be
    ``"normal"`` (the fit is least squares). Anything else is a
    :class:`LawError` saying what to write.

    >>> learn, table = learn_spec({"learn": True, "link": "sigmoid", "offset": 64, "gain": 191})
    >>> learn.links, learn.frame, learn.guess, table
    (('sigmoid',), (64.0, 191.0), False, {'link': 'sigmoid', 'offset': 64, 'gain': 191})
    """
    if not isinstance(spec, Mapping) or "learn" not in spec:
        return None, spec
    table = {k: v for k, v in spec.items() if k != "learn"}
    if not isinstance(spec["learn"], bool):
        raise LawError(f"learn must be true or false, got {spec['learn']!r}")
    if not spec["learn"]:
        return None, table
    if "noise" in table and table["noise"] != "normal":
        raise LawError(
            'a learned law has normal noise (its numbers are fitted by least squares); write noise = "normal" '
            "or leave noise out, or state the law without learn"
        )
    framed = [k for k in ("offset", "gain") if k in table]
    if framed and "link" not in table:
        raise LawError(f"{framed[0]} fixes a learned law's frame for one link; give link too, or leave {framed[0]} out")
    if framed and len(framed) < 2:
        raise LawError("a learned law's frame needs both offset and gain (the value's range under its link)")
    link = table.get("link")
    if link is not None and link not in LINKS:
        raise LawError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
    frame = None
    if framed:
        frame = (_number(table["offset"], "offset"), _number(table["gain"], "gain"))
        if frame[1] <= 0:
            raise LawError("gain and scale must be > 0 (the value must increase with the noise)")
    links = (link,) if link is not None else LINKS
    return Learn(links, frame, any(k in table for k in GUESS_KEYS)), table


# ------------------------------------------------------------------ fitting from labelled data

#: Fraction of a continuous factor's interval added on each side for the sigmoid link
#: (labels may sit on the interval's ends, where the logit is infinite).
SIGMOID_MARGIN = 0.01
#: ... and below ``low`` for the exp link (its log must be finite at ``low`` itself).
EXP_MARGIN = 1e-6
#: Ridge added to the normal equations (keeps categorical one-hot columns solvable).
RIDGE = 1e-8


def fit_law(
    value: np.ndarray,
    parents: Mapping[str, np.ndarray],
    kinds: Mapping[str, Any],
    *,
    low: float,
    high: float,
    links: Sequence[str] = LINKS,
    frame: tuple[float, float] | None = None,
) -> Law:
    """The law of a continuous factor fitted to labelled data, in closed form.

    For each link (identity; exp above ``low``, less :data:`EXP_MARGIN` of the
    interval; sigmoid on ``[low, high]`` widened by :data:`SIGMOID_MARGIN`), the values are taken to the link's
    space, ``u = link^-1((value - offset) / gain)``, and ``u`` is regressed by
    least squares on the parents (a coefficient per numeric or continuous
    parent, one per class of a categorical parent): with normal noise this is
    the maximum-likelihood location, and the residuals' standard deviation
    the maximum-likelihood ``scale``. The link whose fit gives the data the
    highest likelihood *in the value's own units* (the Jacobian included, so
    the three are comparable) is kept.

    :param value: ``(N,)`` the factor's labels.
    :param parents: ``{parent: (N,) values}``: classes (int) of a categorical or grid parent,
        numbers of a continuous one.
    :param kinds: ``{parent: labels tuple}`` for a categorical parent, ``{parent: grid array}``
        for a numeric-grid one, ``{parent: None}`` for a continuous one.
    :param low, high: the factor's interval.
    :param links: the links to try (a story's ``link`` of a learned law: that one).
    :param frame: ``(offset, gain)`` to use for every link instead of its own frame
        (a story's ``offset`` and ``gain`` of a learned law).
    :returns: a :class:`Law` with normal noise (:meth:`Law.to_dict` is JSON).

    >>> rng = np.random.default_rng(0)
    >>> t = 0.5 + rng.gamma(10, 1 / 5, 5000)
    >>> i = 64 + 191 / (1 + np.exp(-(0.5 * rng.standard_normal(5000) + 2 * t - 5)))
    >>> law = fit_law(i, {"thickness": t}, {"thickness": None}, low=0, high=255)
    >>> law.link, round(law.weights["thickness"], 1), round(law.scale, 2)   # on [0, 255], not DeepSCM's [64, 255]
    ('sigmoid', 1.5, 0.38)
    """
    value = np.asarray(value, dtype=np.float64)
    n = len(value)
    if n < 2:
        raise LawError("fitting a continuous factor's law needs at least two labelled rows")
    columns, names = _design(parents, kinds, n)
    design = np.column_stack([np.ones(n), *columns]) if columns else np.ones((n, 1))
    best: tuple[float, Law] | None = None
    for link in links:
        offset, gain = frame if frame is not None else _link_frame(link, low, high, value)
        fitted = _fit_link(Law(tuple(parents), link, offset, gain), value, design, names, parents, kinds)
        if fitted is not None and (best is None or fitted[0] > best[0]):
            best = fitted
    if best is None:
        if frame is not None:
            raise LawError(
                f"the labels run from {value.min():g} to {value.max():g}, which {' or '.join(links)} with offset "
                f"{frame[0]:g} and gain {frame[1]:g} cannot give; widen offset and gain, or leave them out"
            )
        raise LawError("no link fits these labels (they must be finite numbers)")
    return best[1]


def _fit_link(frame: Law, value: np.ndarray, design: np.ndarray, names, parents, kinds) -> tuple[float, Law] | None:
    """``(mean log-likelihood, law)`` of the least-squares fit in the link space of ``frame``
    (its link, offset and gain), or None where the link cannot give every label."""
    u = frame._unlink((value - frame.offset) / frame.gain)
    if not np.all(np.isfinite(u)):
        return None
    gram = design.T @ design + RIDGE * np.eye(design.shape[1])
    coef = np.linalg.solve(gram, design.T @ u)
    resid = u - design @ coef
    scale = max(float(np.sqrt(np.mean(resid**2))), 1e-6)
    law = Law(
        frame.parents, frame.link, frame.offset, frame.gain, float(coef[0]), _weights(coef[1:], names, kinds), scale
    )
    ll = float(np.mean(law.log_prob(value, law.terms(parents, kinds))))
    return (ll, law) if math.isfinite(ll) else None


def _link_frame(link: str, low: float, high: float, value: np.ndarray) -> tuple[float, float]:
    """``(offset, gain)`` of a link for a factor on ``[low, high]``."""
    if link == "sigmoid":
        margin = SIGMOID_MARGIN * (high - low)
        return low - margin, (high - low) + 2 * margin
    if link == "exp":
        floor = min(low, float(value.min()))
        return floor - EXP_MARGIN * (high - low), 1.0
    return 0.0, 1.0


def _design(parents: Mapping[str, np.ndarray], kinds: Mapping[str, Any], n: int):
    """The regression's columns (one per numeric parent, one per class but the first of a
    categorical one) and what each is: ``(parent, None)`` or ``(parent, label)``."""
    columns, names = [], []
    for p, values in parents.items():
        kind = kinds[p]
        values = np.asarray(values)
        if isinstance(kind, tuple):  # categorical: a column per class (the first is the bias's)
            for k, label in enumerate(kind[1:], start=1):
                columns.append((values == k).astype(np.float64))
                names.append((p, label))
        else:
            columns.append(
                np.asarray(kind, dtype=np.float64)[values.astype(np.int64)]
                if kind is not None
                else values.astype(np.float64)
            )
            names.append((p, None))
    return columns, names


def _weights(coef: np.ndarray, names, kinds) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c, (p, label) in zip(coef.tolist(), names):
        if label is None:
            out[p] = float(c)
        else:
            out.setdefault(p, {str(kinds[p][0]): 0.0})[str(label)] = float(c)
    for p, kind in kinds.items():
        if isinstance(kind, tuple) and p not in out:
            out[p] = {str(kind[0]): 0.0}
    return out


def law_contribution(law: Law, parent: str, values: np.ndarray, kind: Any) -> np.ndarray:
    """``weight_parent(values)`` ``(n,)``: the parent's term of the law's location.

    ``kind`` says what the parent is: its labels (categorical: a weight per
    label), its grid (numeric classes: weight times the grid's number) or
    None (continuous: weight times the value).
    """
    w = law.weights.get(parent)
    values = np.asarray(values)
    if w is None:
        return np.zeros(len(values))
    if isinstance(kind, tuple):
        table = np.array([float(w.get(label, 0.0)) for label in kind]) if isinstance(w, Mapping) else None
        if table is None:
            raise LawError(
                f"weights.{parent}: a categorical parent takes a number per label, e.g. {{ {kind[0]} = 0.5 }}"
            )
        return table[values.astype(np.int64)]
    if isinstance(w, Mapping):
        raise LawError(f"weights.{parent}: a numeric parent takes one number (weight times its value)")
    if kind is None:
        return float(w) * values.astype(np.float64)
    return float(w) * np.asarray(kind, dtype=np.float64)[values.astype(np.int64)]


def kind_of(factor: Any) -> Any:
    """What a parent is, for its weight (:func:`law_contribution`): its labels (a
    categorical :class:`~cvaeq.world.Factor`), its grid (numeric classes) or None (continuous)."""
    if getattr(factor, "continuous", False):
        return None
    if factor.labels is not None:
        return tuple(factor.labels)
    return factor.grid


def fit_laws(
    story: Any, factors: np.ndarray, rows: Any = None, only: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every continuous factor's law fitted to labelled data (:func:`fit_law`), as JSON.

    What a model records at training time when it learns its mechanisms from
    data rather than copying the story's: ``{factor: {"parents": [...],
    "link": ..., "offset": ..., ..., "noise": "normal"}}``, plain JSON (a
    checkpoint keeps it in its metadata); ``cvaeq.scm.build_scm(story,
    laws=...)`` builds the SCM from it (each table is what
    :meth:`Law.from_dict` reads, with the parents beside it).

    :param story: the :class:`~cvaeq.story.Story` (its world's factors and each factor's parents).
    :param factors: ``(N, F)`` labels in the world's factor order (float64; categorical columns classes).
    :param rows: optional index of the rows to fit on (e.g. the training part).
    :param only: the factors to fit (None: every continuous factor); ``cvaeq train``
        fits those whose law the story leaves to be learned (``story.learned``).
        A learned factor's fit keeps the form its story gives (:class:`Learn`:
        its link, its frame).

    >>> from cvaeq.story import load_story
    >>> story = load_story("morphomnist")
    >>> fitted = fit_laws(story, story.sample(4000, np.random.default_rng(0)))
    >>> sorted(fitted), fitted["intensity"]["parents"], fitted["intensity"]["link"]
    (['intensity', 'thickness'], ['thickness'], 'sigmoid')
    """
    world = story.world
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[1] != len(world.names):
        raise LawError(f"expected labels of shape (N, {len(world.names)}) in the order {', '.join(world.names)}")
    if rows is not None:
        factors = factors[rows]
    out: dict[str, dict[str, Any]] = {}
    learned = getattr(story, "learned", {}) or {}
    for f in world.continuous:
        if only is not None and f not in only:
            continue
        parents = story.parents(f)
        spec = world.factor(f)
        form = learned.get(f, Learn())
        try:
            law = fit_law(
                factors[:, world.index(f)],
                {p: factors[:, world.index(p)] for p in parents},
                {p: kind_of(world.factor(p)) for p in parents},
                low=spec.low,
                high=spec.high,
                links=form.links,
                frame=form.frame,
            )
        except LawError as e:
            raise LawError(f"fitting the law of {f!r}: {e}") from None
        out[f] = {"parents": list(parents), **law.to_dict()}
    return out
