"""``cvaeq serve``: a local web page to ask causal questions with controls and pictures.

:mod:`.explorer` answers (one loaded model, the evidence as data, the true
counterfactual beside the model's); :mod:`.app` is the HTTP face (Starlette,
served by uvicorn; a page of plain HTML, CSS and JavaScript shipped in
``static/``, no build step, nothing fetched from elsewhere); :mod:`.guard`
decides who may ask (Host names, same-origin writes) and adds the security
headers to every response; :mod:`.connections` times out and bounds the
connections; :mod:`.lanes` answers small questions in process and big ones
in a worker process, so that the small never wait behind the big.
docs/serve.md documents the JSON API and the limits.
"""

from .explorer import Explored, Explorer

__all__ = ["Explorer", "Explored", "create_app"]


def create_app(*args, **kwargs):
    """The Starlette app of an :class:`Explorer` (see :func:`cvaeq.serve.app.create_app`)."""
    from .app import create_app as make

    return make(*args, **kwargs)
