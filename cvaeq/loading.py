"""Finding a model: the one place that turns what a user named into mechanisms.

``cvaeq query``, ``cvaeq eval`` and the Python API all call
:func:`load_mechanisms`: a checkpoint path (of any registered image-model
family), a loaded checkpoint, an object implementing
:class:`~cvaeq.mechanisms.image.ImageModel` with a story, a story alone (its
true tables, no image model: factor queries only), or nothing (the shipped
checkpoint when installed, else the default story).

A checkpoint path is read once: the loaded mechanisms are kept in a small
cache (:data:`CACHE_SIZE` entries, least recently used dropped first) keyed by
the file's resolved path and identity (size, modification time in
nanoseconds, inode), so repeated ``ask(...)`` calls skip the read and the
network build (tens of milliseconds), and a checkpoint rewritten in place
(``cvaeq train`` writes atomically: a new inode) is read again.
:func:`clear_cache` empties it.

>>> m = load_mechanisms(story="default")
>>> m.image_model is None, m.story.world.name
(True, 'dsprites')
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import CheckpointError, QueryError
from .limits import MAX_CHECKPOINT_BYTES, checked_file
from .scm import SCM, cached_scm
from .story import Story, load_story

__all__ = ["Mechanisms", "load_mechanisms", "shipped_checkpoint", "clear_cache", "WEIGHTS", "CACHE_SIZE"]

#: Where checkpoints installed with the package live.
WEIGHTS = Path(__file__).resolve().parent / "weights"
#: Checkpoints kept loaded by :func:`load_mechanisms` (least recently used dropped first).
CACHE_SIZE = 4

_cache: "OrderedDict[tuple, Mechanisms]" = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every checkpoint :func:`load_mechanisms` has kept loaded (and the
    SCMs built on them, :func:`cvaeq.scm.cached_scm`)."""
    from .scm import clear_scm_cache

    with _cache_lock:
        _cache.clear()
    _stored_story.cache_clear()
    clear_scm_cache()


def _file_key(path: Path) -> tuple:
    """What identifies a checkpoint file's content for the cache: its resolved
    path, size, modification time (ns) and inode."""
    try:
        resolved = path.resolve()
        st = resolved.stat()
    except (OSError, RuntimeError) as e:  # gone since it was checked, or a symlink loop
        raise CheckpointError(f"{path}: cannot read the checkpoint file ({getattr(e, 'strerror', None) or e})") from None
    return (str(resolved), st.st_size, st.st_mtime_ns, st.st_ino)


def _load_checkpoint_file(path: Path) -> "Mechanisms":
    """Mechanisms of the checkpoint at ``path``, from the cache when the file is unchanged."""
    key = _file_key(path)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    from .model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    mech = Mechanisms(ckpt.story, ckpt.factor_logits, ckpt.model, str(path))
    with _cache_lock:
        _cache[key] = mech
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return mech


def shipped_checkpoint(story: "Story | None" = None) -> Path | None:
    """The checkpoint installed with the package, if any.

    Without ``story``: ``cvaeq/weights/default.safetensors`` (the dSprites
    model), else the first ``.safetensors`` file there (by name); the rule
    ``cvaeq eval`` follows. With a story: ``cvaeq/weights/<story name>.safetensors``
    (``default`` for the story ``default``) when it was trained on that
    story (:meth:`Story.same_as`: the same graph, tables and latent), else
    None: a user's edited copy under the same name gets no model trained on
    something else.

    >>> shipped_checkpoint().name
    'default.safetensors'
    >>> shipped_checkpoint(load_story("pendulum")).name
    'pendulum.safetensors'
    >>> from cvaeq.story import story_from_text
    >>> edited = story_from_text(load_story("pendulum").text.replace("sd = 0.4", "sd = 0.5"))
    >>> shipped_checkpoint(edited) is None
    True
    """
    found = sorted(WEIGHTS.glob("*.safetensors")) if WEIGHTS.is_dir() else []
    if story is None:
        named = [p for p in found if p.stem == "default"]
        return (named or found or [None])[0]
    path = WEIGHTS / f"{story.name}.safetensors"
    if path not in found:
        return None
    return path if _stored_story(_file_key(path)).same_as(story) else None


@functools.lru_cache(maxsize=CACHE_SIZE)
def _stored_story(key: tuple) -> Story:
    """The story a checkpoint file was trained on, read from its header once per file identity
    (:func:`_file_key`): each query about the image with ``--story`` would otherwise re-read and re-parse it."""
    from .model.checkpoint import read_metadata
    from .story import story_from_text

    path = Path(key[0])
    return story_from_text(read_metadata(path).get("story_text", ""), source=f"{path} (stored story)")


@dataclass(frozen=True)
class Mechanisms:
    """Where a query's mechanisms come from.

    :ivar story: the story (graph, and tables unless ``factor_logits`` is given).
    :ivar factor_logits: fitted ``{factor: log-probability table}``, or None for the story's.
    :ivar image_model: the image model (decoder and encoders), or None.
    :ivar name: the checkpoint's path, or None when the story's true tables are used.
    """

    story: Story
    factor_logits: Mapping[str, Any] | None = None
    image_model: Any = None
    name: str | None = None

    def scm(self, with_image: bool) -> SCM:
        """The SCM; with the image node X only when asked (decoding costs time).

        Built once per story, tables and image model (the very objects, which a
        cached checkpoint hands out again): an SCM keeps its mechanisms' noise
        priors, and repeated queries skip building both.
        """
        return cached_scm(self.story, self.factor_logits, self.image_model if with_image else None)


def load_mechanisms(model: Any = None, story: str | os.PathLike | Story | None = None,
                    image: bool = False) -> Mechanisms:
    """Mechanisms from a checkpoint path, a loaded checkpoint, an image model or a story.

    :param model: None (the shipped checkpoint if installed, else the story),
        a checkpoint path, a loaded checkpoint (``.model``, ``.story``,
        ``.factor_logits``), or an object implementing
        :class:`~cvaeq.mechanisms.image.ImageModel` (used with ``story``'s tables).
    :param story: a story name, path or :class:`~cvaeq.story.Story`; alone, it
        means the story's true tables with no image model.
    :param image: with ``story`` alone, an image model is wanted: the
        checkpoint shipped for that story (:func:`shipped_checkpoint`) if
        there is one, else still the story's true tables.
    """
    if isinstance(story, (str, os.PathLike)):
        story = load_story(story)
    elif story is not None and not isinstance(story, Story):
        raise QueryError(f"story must be a story's name, a path to a story file or a Story, "
                         f"got {type(story).__name__}")
    if model is None:
        if story is not None:
            shipped = shipped_checkpoint(story) if image else None
            return Mechanisms(story) if shipped is None else load_mechanisms(shipped)
        shipped = shipped_checkpoint()
        if shipped is None:
            return Mechanisms(load_story("default"))
        model = shipped
    if isinstance(model, (str, os.PathLike)):
        if story is not None:
            raise QueryError("give a model or a story, not both: a checkpoint carries the story it was trained on")
        path = Path(model)
        checked_file(path, "checkpoint", MAX_CHECKPOINT_BYTES, CheckpointError,
                     "pass a .safetensors file from cvaeq train")
        mech = _load_checkpoint_file(path)
        return mech if mech.name == str(path) else replace(mech, name=str(path))
    if all(hasattr(model, a) for a in ("model", "story", "factor_logits")):  # a loaded checkpoint
        if story is not None:
            raise QueryError("give a model or a story, not both: a checkpoint carries the story it was trained on")
        path = getattr(model, "path", None)
        return Mechanisms(model.story, model.factor_logits, model.model, str(path) if path else "<checkpoint>")
    from .mechanisms.image import missing_members

    missing = missing_members(model)
    if missing:
        raise QueryError(
            f"model must be a checkpoint path, a loaded checkpoint or an image model; {type(model).__name__} "
            f"has no {missing}"
        )
    return Mechanisms(story or load_story("default"), None, model, type(model).__name__)
