"""Finding a model: the one place that turns what a user named into mechanisms.

``cvaeq query``, ``cvaeq eval`` and the Python API all call
:func:`load_model`, which gives a :class:`LoadedModel` (a story, its factor
tables and an image model, and the SCMs built on them): from a checkpoint path
(of any registered image-model family), a loaded checkpoint, an object
implementing the image-model protocol (:mod:`cvaeq.image_model`) with a
story, a story alone (its true tables, no image model: factor queries only),
or nothing (the shipped checkpoint when installed, else the default story).

A checkpoint path is read once: the loaded model is kept in
:data:`cvaeq.filecache.CHECKPOINTS` (a few entries, least recently used
dropped first) under the file's identity, so repeated ``ask(...)`` calls skip
the read and the network build (tens of milliseconds), and a checkpoint
replaced or rewritten is read again (:mod:`cvaeq.filecache` states the one
rule). A loaded model keeps the SCMs built on it, so repeated questions skip
building those too. :func:`clear_cache` empties the file caches.

>>> m = load_model(story="default")
>>> m.image_model is None, m.story.world.name
(True, 'dsprites')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import filecache
from .errors import CheckpointError, QueryError
from .limits import MAX_CHECKPOINT_BYTES, checked_file
from .scm import SCM, build_scm
from .story import Story, load_story

__all__ = [
    "LoadedModel",
    "load_model",
    "Mechanisms",
    "load_mechanisms",
    "shipped_checkpoint",
    "clear_cache",
    "WEIGHTS",
    "CACHE_SIZE",
]

#: Where checkpoints installed with the package live.
WEIGHTS = Path(__file__).resolve().parent / "weights"
#: Checkpoints kept loaded by :func:`load_model` (:data:`cvaeq.filecache.CHECKPOINTS`).
CACHE_SIZE = filecache.CHECKPOINTS.size


def clear_cache() -> None:
    """Forget every checkpoint :func:`load_model` has kept loaded (and the SCMs
    built on them, which they hold), and every stored story read: :func:`cvaeq.filecache.clear`."""
    filecache.clear()


def _read_checkpoint(path: Path) -> LoadedModel:
    from .model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    return LoadedModel(ckpt.story, ckpt.factor_logits, ckpt.model, str(path), laws=getattr(ckpt, "laws", None))


def shipped_checkpoint(story: Story | None = None) -> Path | None:
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
        chosen = named or found
        return chosen[0] if chosen else None
    path = WEIGHTS / f"{story.name}.safetensors"
    if path not in found:
        return None
    return path if filecache.STORED_STORIES.get(path, _read_stored_story).same_as(story) else None


def _read_stored_story(path: Path) -> Story:
    """The story a checkpoint file was trained on, from its header (kept per
    file by :data:`cvaeq.filecache.STORED_STORIES`: each query about the image
    with ``--story`` would otherwise re-read and re-parse it)."""
    from .model.checkpoint import read_metadata
    from .story import story_from_text

    return story_from_text(read_metadata(path).get("story_text", ""), source=f"{path} (stored story)")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to answer questions: a story, its factor tables and an image model.

    :ivar story: the story (graph, and tables unless ``factor_logits`` is given).
    :ivar factor_logits: fitted ``{factor: log-probability table}``, or None for the story's.
    :ivar image_model: the image model (decoder and encoders, :mod:`cvaeq.image_model`), or None.
    :ivar name: the checkpoint's path, or None when the story's true tables are used.
    :ivar laws: fitted ``{continuous factor: law table}`` (:func:`cvaeq.invertible.fit_laws`),
        or None for the story's laws.
    """

    story: Story
    factor_logits: Mapping[str, Any] | None = None
    image_model: Any = None
    name: str | None = None
    laws: Mapping[str, Any] | None = None
    #: the SCMs built on this model, by ``with_image`` (shared by copies made with ``replace``)
    _scms: dict = field(default_factory=dict, compare=False, repr=False)

    def scm(self, with_image: bool) -> SCM:
        """The SCM; with the image node X only when asked (decoding costs time).

        Built once per loaded model and kept by it (an SCM keeps its
        mechanisms' noise priors, and repeated queries skip building both);
        an SCM is never changed once built (``intervene`` derives new ones),
        so sharing it is safe.
        """
        key = bool(with_image) and self.image_model is not None
        scm = self._scms.get(key)
        if scm is None:
            scm = self._scms.setdefault(
                key, build_scm(self.story, self.factor_logits, self.image_model if key else None, laws=self.laws)
            )
        return scm


#: The name :class:`LoadedModel` had before 2026-12-07 (it was never a set of mechanisms).
Mechanisms = LoadedModel


def load_model(model: Any = None, story: str | os.PathLike | Story | None = None, image: bool = False) -> LoadedModel:
    """A :class:`LoadedModel` from a checkpoint path, a loaded checkpoint, an image model or a story.

    :param model: None (the shipped checkpoint if installed, else the story),
        a checkpoint path, a loaded checkpoint (``.model``, ``.story``,
        ``.factor_logits``), or an object implementing
        the image-model protocol (:mod:`cvaeq.image_model`; used with ``story``'s tables).
    :param story: a story name, path or :class:`~cvaeq.story.Story`; alone, it
        means the story's true tables with no image model.
    :param image: with ``story`` alone, an image model is wanted: the
        checkpoint shipped for that story (:func:`shipped_checkpoint`) if
        there is one, else still the story's true tables.
    """
    if story is not None and not isinstance(story, Story):
        story = load_story(story)  # a name or a path; anything else is refused there in one line
    if model is None:
        if story is not None:
            shipped = shipped_checkpoint(story) if image else None
            return LoadedModel(story) if shipped is None else load_model(shipped)
        shipped = shipped_checkpoint()
        if shipped is None:
            return LoadedModel(load_story("default"))
        model = shipped
    if isinstance(model, (str, os.PathLike)):
        if story is not None:
            raise QueryError("give a model or a story, not both: a checkpoint carries the story it was trained on")
        path = Path(model)
        checked_file(
            path, "checkpoint", MAX_CHECKPOINT_BYTES, CheckpointError, "pass a .safetensors file from cvaeq train"
        )
        mech = filecache.CHECKPOINTS.get(path, _read_checkpoint)
        return mech if mech.name == str(path) else replace(mech, name=str(path))
    if all(hasattr(model, a) for a in ("model", "story", "factor_logits")):  # a loaded checkpoint
        if story is not None:
            raise QueryError("give a model or a story, not both: a checkpoint carries the story it was trained on")
        source = getattr(model, "path", None)
        return LoadedModel(
            model.story,
            model.factor_logits,
            model.model,
            str(source) if source else "<checkpoint>",
            laws=getattr(model, "laws", None),
        )
    from .image_model import missing_members

    missing = missing_members(model)
    if missing:
        raise QueryError(
            f"model must be a checkpoint path, a loaded checkpoint or an image model; {type(model).__name__} "
            f"has no {missing}"
        )
    return LoadedModel(story or load_story("default"), None, model, type(model).__name__)


#: The name :func:`load_model` had before 2026-12-07.
load_mechanisms = load_model
