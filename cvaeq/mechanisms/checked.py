"""The boundary of a plugin's mechanism: what it returns is checked before the engine uses it.

A mechanism family from a plugin (not a built-in) is wrapped in
:class:`CheckedMechanism` when it builds a mechanism
(:meth:`cvaeq.plugins.MechanismFamily.__call__`). The wrapper passes every
call through and checks what comes back, before anything is weighted, stored
or answered:

* ``assign``: a tensor with the particle dimension first; a categorical
  node's (one with ``size``) values are integer classes in ``[0, size)`` (a
  float tensor is refused: ``0.7`` would silently become class 0), other
  nodes' values are finite floats;
* ``log_prob``: ``[S]`` log-probabilities, never NaN or ``+inf``;
* ``abduct``: ``(noise, log_weight)``, noise with the particle dimension
  first and no NaN, the log-weight as ``log_prob``'s (a mechanism returning
  the noise alone, the contract before 2026-12-07, gets its weight from its
  ``log_prob``); ``abduct_noise``: the noise alone, checked the same way;
* ``propose``: None, or ``(values, log_q)`` with ``log_q`` ``[S]`` and no NaN;
* ``noise_prior``: a torch distribution.

A plugin's image model (the decoder and encoders of an image-model family
other than the built-in ones) is checked the same way by
:class:`CheckedImageModel`, which :func:`cvaeq.mechanisms.image.bernoulli_image`
puts around it.

A call that raises (anything but a :class:`~cvaeq.errors.CvaeqError`, which
is the mechanism's own message to the user) or returns what the protocol
forbids is a :class:`~cvaeq.errors.PluginError` of one line naming the
plugin, the family, the node and what was wrong. Built-in families are not
wrapped: they are tested (:mod:`cvaeq.testing`) and on the hot path.

>>> import torch
>>> class Halves:  # a plugin's categorical mechanism that forgot to round
...     parents, event_dim, size = (), 0, 2
...     def noise_prior(self, n):
...         return torch.distributions.Uniform(torch.zeros(n), torch.ones(n))
...     def assign(self, parents, noise):
...         return noise
>>> m = CheckedMechanism(Halves(), "halves", "demo")
>>> m.node = "coin"
>>> m.assign({}, torch.tensor([0.5, 0.25]))
Traceback (most recent call last):
...
cvaeq.errors.PluginError: plugin 'demo' (mechanism 'halves', node 'coin'): assign() returned float32 values
(e.g. 0.25, 0.5), not int64 classes 0..1; fix or uninstall the plugin (`cvaeq plugins` lists it)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..errors import PluginError, call_plugin, plugin_error
from ..plugin_manager import get_plugin_manager
from .base import Abduction

__all__ = ["CheckedMechanism", "CheckedImageModel", "check_built", "is_builtin"]

_OPTIONAL = ("log_prob", "abduct", "abduct_noise", "propose")


def is_builtin(obj: Any) -> bool:
    """Whether ``obj``'s class is cvaeq's own (not a plugin's, not a user's)."""
    return type(obj).__module__.split(".")[0] == "cvaeq"


def check_built(m: Any, family: str, plugin: str) -> None:
    """What a family's factory returned has the protocol's required members."""

    def bad(what: str) -> PluginError:
        return PluginError(
            f"plugin {plugin!r} (mechanism {family!r}): the factory returned "
            f"{type(m).__name__}, which {what}; see cvaeq.mechanisms.base"
        )

    for member in ("noise_prior", "assign"):
        if not callable(getattr(m, member, None)):
            raise bad(f"has no {member}()")
    parents = getattr(m, "parents", None)
    if not isinstance(parents, tuple) or not all(isinstance(p, str) for p in parents):
        raise bad("has no tuple of parent names `parents`")
    event_dim = getattr(m, "event_dim", None)
    if isinstance(event_dim, bool) or not isinstance(event_dim, int) or event_dim < 0:
        raise bad(f"has event_dim {event_dim!r}, not a non-negative integer")
    size = getattr(m, "size", None)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise bad(f"has size {size!r}, not a positive integer")


class CheckedMechanism:
    """A plugin's mechanism whose every answer is checked (see the module doc).

    :param inner: the mechanism the family built.
    :param family: the family's registered name.
    :param plugin: the plugin that registered it.

    ``node`` (set by :func:`cvaeq.scm.build_scm`) names the node in errors.
    Other attributes (``parents``, ``event_dim``, ``size``, ``intervenable``,
    anything else) are the inner mechanism's; an optional method is present
    exactly when the inner mechanism has it, so the engine's choice of path
    (exact abduction or the fallback) is unchanged; ``isinstance`` sees the
    inner mechanism's class too (as :mod:`unittest.mock` does), so a plugin's
    own type checks keep working.
    """

    def __init__(self, inner: Any, family: str, plugin: str) -> None:
        check_built(inner, family, plugin)
        self.inner = inner
        self.family = family
        self.plugin = plugin
        self.node: str | None = None

    @property  # type: ignore[misc]  # read-only on purpose: the wrapper passes for the plugin's own class
    def __class__(self):  # isinstance(m, PluginsOwnClass) stays true for the plugin's code and tests
        return type(self.inner)

    def __repr__(self) -> str:
        return f"CheckedMechanism({self.inner!r}, family={self.family!r}, plugin={self.plugin!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if name in _OPTIONAL and callable(value):
            return self._checked(name, value)
        return value

    # ------------------------------------------------------------- errors

    def _fail(self, what: str) -> PluginError:
        node = f", node {self.node!r}" if self.node else ""
        return plugin_error(f"plugin {self.plugin!r} (mechanism {self.family!r}{node})", what)

    def _call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return call_plugin(self._fail, name, fn, *args)

    # ------------------------------------------------------------- members

    def noise_prior(self, num_particles: int) -> torch.distributions.Distribution:
        d = self._call("noise_prior", self.inner.noise_prior, num_particles)
        if not isinstance(d, torch.distributions.Distribution):
            raise self._fail(f"noise_prior() returned {type(d).__name__}, not a torch distribution")
        return d

    def assign(self, parents: Mapping[str, Tensor], noise: Tensor) -> Tensor:
        value = self._call("assign", self.inner.assign, parents, noise)
        return self._value("assign", value, int(torch.as_tensor(noise).shape[0]))

    def _checked(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def log_prob(value: Tensor, parents: Mapping[str, Tensor]) -> Tensor:
            out = self._call(name, fn, value, parents)
            return self._log_density(name, out, int(value.shape[0]))

        def abduct(value: Tensor, parents: Mapping[str, Tensor]) -> Abduction | Tensor:
            out = self._call(name, fn, value, parents)
            s = int(value.shape[0])
            if name == "abduct_noise":
                return self._noise(name, out, s)
            if isinstance(out, Tensor):  # the contract before 2026-12-07: the noise alone, the weight from log_prob
                if not callable(getattr(self.inner, "log_prob", None)):
                    raise self._fail(
                        "abduct() returned the noise alone and there is no log_prob(); return (noise, log_weight)"
                    )
                noise, log_weight = out, self.log_prob(value, parents)
            elif isinstance(out, tuple) and len(out) == 2:
                noise, log_weight = out[0], self._log_density(name, out[1], s)
            else:
                raise self._fail(f"abduct() returned {type(out).__name__}; expected (noise, log_weight)")
            return Abduction(self._noise(name, noise, s), log_weight)

        def propose(value: Tensor, unknown, known):
            out = self._call(name, fn, value, unknown, known)
            if out is None:
                return None
            if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Mapping)):
                raise self._fail(f"propose() returned {type(out).__name__}; expected None or (values, log_q)")
            self._log_density(name, out[1], int(value.shape[0]))
            return out

        checked: dict[str, Callable[..., Any]] = {
            "log_prob": log_prob,
            "abduct": abduct,
            "abduct_noise": abduct,
            "propose": propose,
        }
        return checked[name]

    # ------------------------------------------------------------- checks

    def _value(self, name: str, value: Any, s: int) -> Tensor:
        if not isinstance(value, Tensor):
            raise self._fail(f"{name}() returned {type(value).__name__}, not a torch tensor")
        event_dim = self.inner.event_dim
        if value.dim() not in (event_dim, event_dim + 1) or (value.dim() == event_dim + 1 and value.shape[0] != s):
            raise self._fail(
                f"{name}() returned shape {tuple(value.shape)}; expected {s} particles first "
                f"and {event_dim} dimension(s) per value"
            )
        size = getattr(self.inner, "size", None)
        if size is not None:
            if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
                raise self._fail(
                    f"{name}() returned {str(value.dtype).replace('torch.', '')} values "
                    f"(e.g. {_some(value)}), not int64 classes 0..{size - 1}"
                )
            if value.dtype != torch.int64:
                value = value.long()
            out = (value < 0) | (value >= size)
            if bool(out.any()):
                raise self._fail(f"{name}() returned class {_some(value[out])} of a node with classes 0..{size - 1}")
            return value
        if value.is_complex() or (value.is_floating_point() and not bool(torch.isfinite(value).all())):
            raise self._fail(f"{name}() returned {'complex' if value.is_complex() else 'NaN or infinite'} values")
        return value

    def _noise(self, name: str, noise: Any, s: int) -> Tensor:
        if not isinstance(noise, Tensor) or noise.dim() < 1 or noise.shape[0] != s:
            raise self._fail(f"{name}() returned {_shape_of(noise)}; expected noise with {s} particles first")
        if noise.is_floating_point() and bool(torch.isnan(noise).any()):
            raise self._fail(f"{name}() returned NaN noise")
        return noise

    def _log_density(self, name: str, out: Any, s: int) -> Tensor:
        if not isinstance(out, Tensor) or tuple(out.shape) != (s,):
            raise self._fail(f"{name}() returned {_shape_of(out)}; expected a log-probability per particle [{s}]")
        if not out.is_floating_point() or bool(torch.isnan(out).any()) or bool((out == float("inf")).any()):
            raise self._fail(f"{name}() returned NaN, +inf or non-float log-probabilities")
        return out


def _shape_of(x: Any) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__


def _some(t: Tensor) -> str:
    vals = torch.unique(t.reshape(-1)[:10_000])[:3].tolist()  # a few distinct values
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals)


class CheckedImageModel:
    """A plugin's image model (a family other than the built-in ones) whose
    answers are checked before the image mechanism uses them:

    * ``pixel_logits(classes, z)``: float ``[S, H, W]`` of the world's image
      shape, no NaN (``±inf`` logits are certain pixels);
    * ``decode_probs(classes, z)``: the same, every value in ``[0, 1]``;
    * ``factor_logits(x)``: ``{factor: float [S, size]}``, no NaN;
    * ``z_posterior(x, classes)``: ``(loc, scale)``, finite ``[S, d]``, scale > 0;
    * the split encoder's heads ``factor_logits_of(features)`` and
      ``z_posterior_of(features, classes)``: as the two above;
    * ``factor_normals(x)`` (and ``factor_normals_of(features)``), a world
      with continuous factors: ``{factor: (loc [S], log_scale [S])}``, finite.

    A call that raises, or returns anything else, is a PluginError naming the
    model (its class and module, and the plugin when it is one). Other
    attributes (``latent_dim``, ``pixel_dtype``, ...) are the model's.
    """

    _METHODS = (
        "pixel_logits",
        "decode_probs",
        "factor_logits",
        "z_posterior",
        "factor_logits_of",
        "z_posterior_of",
        "factor_normals",
        "factor_normals_of",
    )

    def __init__(self, inner: Any, shape: tuple[int, ...]) -> None:
        self.inner = inner
        self.shape = tuple(shape)
        self.who = _who_made(inner)

    def __repr__(self) -> str:
        return f"CheckedImageModel({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if name in self._METHODS and callable(value):
            return getattr(self, "_" + name)(value)
        return value

    def _fail(self, what: str) -> PluginError:
        return plugin_error(self.who, what)

    def _call(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        return call_plugin(self._fail, name, fn, *args)

    def _pixels(self, name: str, out: Any, s: int) -> Tensor:
        if not isinstance(out, Tensor) or tuple(out.shape) != (s, *self.shape):
            raise self._fail(
                f"{name}() returned {_shape_of(out)}; expected float [{s}, {self.shape[0]}, {self.shape[1]}]"
            )
        if not out.is_floating_point() or bool(torch.isnan(out).any()):
            raise self._fail(f"{name}() returned {'NaN' if out.is_floating_point() else out.dtype} pixels")
        return out

    def _pixel_logits(self, fn):
        def pixel_logits(classes: Tensor, z: Tensor) -> Tensor:
            return self._pixels("pixel_logits", self._call("pixel_logits", fn, classes, z), int(classes.shape[0]))

        return pixel_logits

    def _decode_probs(self, fn):
        def decode_probs(classes: Tensor, z: Tensor) -> Tensor:
            out = self._pixels("decode_probs", self._call("decode_probs", fn, classes, z), int(classes.shape[0]))
            if bool(((out < 0) | (out > 1)).any()):
                raise self._fail("decode_probs() returned pixel probabilities outside [0, 1]")
            return out

        return decode_probs

    def _factor_logits(self, fn, name: str = "factor_logits"):
        def factor_logits(x: Tensor) -> Mapping[str, Tensor]:
            out = self._call(name, fn, x)
            s = int(x.shape[0])
            if not isinstance(out, Mapping):
                raise self._fail(f"{name}() returned {type(out).__name__}, not {{factor: logits}}")
            for f, t in out.items():
                if not isinstance(t, Tensor) or t.dim() != 2 or t.shape[0] != s:
                    raise self._fail(f"{name}() gave {f!r} {_shape_of(t)}; expected float [{s}, classes]")
                if not t.is_floating_point() or bool(torch.isnan(t).any()):
                    raise self._fail(f"{name}() gave {f!r} NaN or non-float logits")
            return out

        return factor_logits

    def _z_posterior(self, fn, name: str = "z_posterior"):
        def z_posterior(x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
            out = self._call(name, fn, x, classes)
            s = int(x.shape[0])
            if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)):
                raise self._fail(f"{name}() returned {type(out).__name__}; expected (loc, scale) tensors")
            loc, scale = out
            if loc.dim() != 2 or loc.shape[0] != s or scale.shape != loc.shape:
                raise self._fail(
                    f"{name}() returned loc {tuple(loc.shape)} and scale {tuple(scale.shape)}; "
                    f"expected both [{s}, latent_dim]"
                )
            if not (bool(torch.isfinite(loc).all()) and bool(torch.isfinite(scale).all()) and bool((scale > 0).all())):
                raise self._fail(f"{name}() returned a NaN or infinite loc, or a scale that is not > 0")
            return out

        return z_posterior

    def _factor_normals(self, fn, name: str = "factor_normals"):
        def factor_normals(x: Tensor) -> Mapping[str, tuple[Tensor, Tensor]]:
            out = self._call(name, fn, x)
            s = int(x.shape[0])
            if not isinstance(out, Mapping):
                raise self._fail(f"{name}() returned {type(out).__name__}, not {{factor: (loc, log_scale)}}")
            for f, pair in out.items():
                ok = isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(t, Tensor) for t in pair)
                if not ok or any(tuple(t.shape) != (s,) or not t.is_floating_point() for t in pair):
                    raise self._fail(f"{name}() gave {f!r} {_shape_of(pair)}; expected (loc, log_scale), float [{s}]")
                if not all(bool(torch.isfinite(t).all()) for t in pair):
                    raise self._fail(f"{name}() gave {f!r} a NaN or infinite loc or log_scale")
            return out

        return factor_normals

    def _factor_normals_of(self, fn):
        return self._factor_normals(fn, "factor_normals_of")

    def _factor_logits_of(self, fn):  # the split encoder's head (cvaeq.image_model.SplitEncoder)
        return self._factor_logits(fn, "factor_logits_of")

    def _z_posterior_of(self, fn):
        return self._z_posterior(fn, "z_posterior_of")


def _who_made(obj: Any) -> str:
    """``"image model NAME (plugin 'P')"``: the plugin whose module defines ``obj``'s class, if one does."""
    module = type(obj).__module__
    plugin = None
    try:
        for name, p in get_plugin_manager().list_name_plugin():
            root = getattr(p, "__name__", type(p).__module__).split(".")[0]
            if module.split(".")[0] == root:
                plugin = name
                break
    except Exception:  # naming the plugin is a courtesy; the check stands without it
        plugin = None
    where = f"plugin {plugin!r}" if plugin else f"module {module}"
    return f"{where} (image model {type(obj).__name__})"
