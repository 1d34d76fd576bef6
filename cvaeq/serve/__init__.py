"""``cvaeq serve``: a local web page to ask causal questions with controls and pictures.

:mod:`.explorer` answers (one loaded model, the evidence as data, the true
counterfactual beside the model's); :mod:`.app` is the HTTP face (Starlette,
served by uvicorn; a page of plain HTML, CSS and JavaScript shipped in
``static/``, no build step, nothing fetched from elsewhere). docs/serve.md
documents the JSON API and the limits.
"""

from .explorer import Explored, Explorer

__all__ = ["Explorer", "Explored", "create_app"]


def create_app(*args, **kwargs):
    """The Starlette app of an :class:`Explorer` (see :func:`cvaeq.serve.app.create_app`)."""
    from .app import create_app as make

    return make(*args, **kwargs)
