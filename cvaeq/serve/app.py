"""The explorer's HTTP face: a Starlette app over one :class:`~cvaeq.serve.explorer.Explorer`.

Routes (docs/serve.md has the request and response of each):

* ``GET /``: the page; ``GET /static/NAME``: its script and style, from the
  package, looked up in a fixed table (a client's path never names a file);
* ``GET /api/world``: what the page is generated from (:meth:`Explorer.describe`);
* ``GET /api/dag.svg?do=a,b&seen=c``: the story's DAG, arrows into ``do`` nodes cut;
* ``POST /api/query``: ``{"query", "image", "samples", "seed"}`` → the answer's
  JSON, ``cvaeq query --json``'s with ``images`` naming the PNG URLs below;
* ``GET /api/answers/ID/NAME.png``: ``evidence``, ``samples``, ``mean``, ``truth``;
* ``GET /api/decode.png?FACTOR=VALUE&...&z=0,0``: the decoder's picture.

Every response that is not a page, a picture or the DAG is JSON, errors
included: bad input (a :class:`~cvaeq.errors.CvaeqError`, bad JSON, an
unknown answer) is a 4xx whose ``{"error": ...}`` holds the line the CLI would
print after ``error:``, and so are 404, 405, 503 (a full lane) and 500 (a
bug); the server keeps serving. Bodies are read no further than
:data:`MAX_BODY_BYTES` (413 beyond) and within
:data:`~cvaeq.serve.connections.BODY_TIMEOUT_S` (408 after). Who may ask and
the headers of every response: :mod:`.guard`; the connections' timeouts and
bound: :mod:`.connections`; the two lanes of questions: :mod:`.lanes`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ENVIRONMENT_ERRORS, CvaeqError, one_line
from ..viz import grid, png_bytes, to_pixels
from .connections import BODY_TIMEOUT_S
from .explorer import Explored, Explorer
from .guard import SECURITY_HEADERS, Guard, HostPolicy, error_response
from .lanes import Busy, Lanes

__all__ = ["create_app", "MAX_BODY_BYTES", "ANSWERS_KEPT", "ASSETS", "PICTURE_SCALE"]

#: Largest request body (a question with a base64 PNG of the largest image a page sends).
MAX_BODY_BYTES = 1 << 20
#: Answers whose pictures are kept for their URLs (the oldest are forgotten first).
ANSWERS_KEPT = 256
#: The page's files: URL name → (package file, media type). Nothing else is served from disk.
ASSETS = {
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "explorer.css": ("explorer.css", "text/css; charset=utf-8"),
}
#: Single pictures are enlarged this many times (pixel repetition) so that a page shows them crisp.
PICTURE_SCALE = 2
PICTURES = ("evidence", "samples", "mean", "truth")


class BadRequest(Exception):
    """A request the server refuses with ``status`` and a one-line message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


_error = error_response


def _read_asset(name: str) -> bytes:
    return resources.files("cvaeq.serve").joinpath("static", name).read_bytes()


class _Pictures:
    """The arrays of recent answers, by answer id; PNGs made when asked for."""

    def __init__(self, kept: int = ANSWERS_KEPT):
        self.kept = kept
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, pictures: dict) -> None:
        with self._lock:
            self._items[key] = pictures
            self._items.move_to_end(key)
            while len(self._items) > self.kept:
                self._items.popitem(last=False)

    def get(self, key: str, name: str):
        with self._lock:
            return self._items.get(key, {}).get(name)


async def _body_json(request: Request) -> Any:
    """The request's JSON body, read no further than :data:`MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES:,} bytes", 413)
    chunks, size = [], 0
    try:
        with anyio.fail_after(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES:,} bytes", 413)
                chunks.append(chunk)
    except TimeoutError:
        raise BadRequest(f"the request body did not arrive within {BODY_TIMEOUT_S:g} s; send it at once", 408) from None
    try:
        return json.loads(b"".join(chunks).decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRequest(
            f"the request body is not JSON ({e}); send an object like "
            '{"query": "P(X | do(...), X=img)", "image": {"factors": {...}}}'
        ) from None


def _answer_id(body: dict) -> str:
    """The same question gets the same id (and URLs): its canonical JSON's hash."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class _Endpoints:
    """The routes' endpoints over one explorer, its lanes, the page's files and the recent answers' pictures."""

    def __init__(self, ex: Explorer, lanes: Lanes) -> None:
        self.ex = ex
        self.lanes = lanes
        self.assets = {name: (_read_asset(file), media) for name, (file, media) in ASSETS.items()}
        self.pictures = _Pictures()

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page),
            Route("/static/{name}", self.static),
            Route("/api/world", self.world),
            Route("/api/dag.svg", self.dag),
            Route("/api/query", self.query, methods=["POST"]),
            Route("/api/answers/{key}/{name}.png", self.answer_picture),
            Route("/api/decode.png", self.decode),
        ]

    async def page(self, request: Request) -> Response:
        body, media = self.assets["index.html"]
        return Response(body, media_type=media, headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        found = self.assets.get(request.path_params["name"])
        if found is None:
            raise BadRequest(f"no such file; the page's files are {', '.join(sorted(self.assets))}", 404)
        return Response(found[0], media_type=found[1], headers=SECURITY_HEADERS)

    async def world(self, request: Request) -> Response:
        return JSONResponse(self.ex.describe(), headers=SECURITY_HEADERS)

    async def dag(self, request: Request) -> Response:
        svg = self.ex.dag(_names(request, "do"), _names(request, "seen"))
        return Response(svg, media_type="image/svg+xml", headers=SECURITY_HEADERS)

    async def query(self, request: Request) -> Response:
        body = await _body_json(request)
        if not isinstance(body, dict):
            raise BadRequest('send a JSON object: {"query": ..., "image": ..., "samples": ..., "seed": ...}')
        unknown = sorted(set(body) - {"query", "image", "samples", "seed"})
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}; a question has query, image, samples and seed")
        explored: Explored = await self.lanes.ask(
            body.get("query"), body.get("image"), body.get("samples"), body.get("seed")
        )
        key = _answer_id(body)
        shown = explored.pictures
        self.pictures.add(key, shown)
        urls = {name: f"/api/answers/{key}/{name}.png" for name in PICTURES if name in shown}
        d = explored.to_dict(urls)
        d["dag"] = (
            "/api/dag.svg?do="
            + ",".join(explored.interventions)
            + "&seen="
            + ",".join((["X"] if explored.observed_image else []) + list(explored.observed))
        )
        return JSONResponse(d, headers=SECURITY_HEADERS)

    async def answer_picture(self, request: Request) -> Response:
        key, name = request.path_params["key"], request.path_params["name"]
        if name not in PICTURES:
            raise BadRequest(f"no picture {name!r}; an answer has {', '.join(PICTURES)}", 404)
        array = self.pictures.get(key, name)
        if array is None:
            raise BadRequest("no such answer picture (answers are kept for a while only); ask again", 404)
        blob = await run_in_threadpool(_png, array, name)
        return Response(blob, media_type="image/png", headers=SECURITY_HEADERS | {"Cache-Control": "max-age=600"})

    async def decode(self, request: Request) -> Response:
        params = dict(request.query_params)
        z_text = params.pop("z", "")
        try:
            z = [float(v) for v in z_text.split(",") if v.strip()]
        except ValueError:
            raise BadRequest(f"z must be numbers separated by commas, got {z_text!r}") from None
        probs = await run_in_threadpool(self.ex.decode, params, z)
        return Response(png_bytes(to_pixels(probs), PICTURE_SCALE), media_type="image/png", headers=SECURITY_HEADERS)


def _names(request: Request, key: str) -> list[str]:
    return [n.strip() for n in request.query_params.get(key, "").split(",") if n.strip()]


def _png(array, name: str) -> bytes:
    if name == "samples":
        return png_bytes(grid(array), 1)
    return png_bytes(to_pixels(array), PICTURE_SCALE)


# ------------------------------------------------- errors: one JSON line each, the server keeps serving


async def _bad_request(request: Request, exc: BadRequest) -> Response:
    return _error(str(exc), exc.status)


async def _user_error(request: Request, exc: CvaeqError) -> Response:
    return _error(str(exc), 400)


async def _environment_error(request: Request, exc: Exception) -> Response:
    return _error(one_line(exc), 503 if isinstance(exc, MemoryError) else 400)


async def _busy(request: Request, exc: Busy) -> Response:
    return _error(str(exc), 503, {"Retry-After": "5"})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        message = f"no such page or API: {request.url.path[:200]}; the API is described in docs/serve.md"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path[:200]}; use {allowed or 'another method'}"
    else:
        message = str(exc.detail)
    return _error(
        message, exc.status_code, {"Allow": exc.headers["Allow"]} if exc.headers and "Allow" in exc.headers else None
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    # a bug: its traceback goes to the server's log; the client gets one line, never a path
    return _error(
        f"internal error ({type(exc).__name__}); the server keeps serving: please report it "
        "with the question that caused it",
        500,
    )


_HANDLERS: dict[Any, Any] = {
    BadRequest: _bad_request,
    CvaeqError: _user_error,
    Busy: _busy,
    HTTPException: _http_error,
    Exception: _server_error,
}
_HANDLERS |= {e: _environment_error for e in ENVIRONMENT_ERRORS}


def create_app(
    explorer: Explorer | None = None, *, bound: str | None = None, allow_hosts: Iterable[str] = (), **kwargs
) -> Starlette:
    """The app answering for ``explorer`` (default: ``Explorer(**kwargs)``, e.g. ``model=``, ``story=``, ``seed=``).

    :param bound: the address the server listens on (its Host names are answered, :class:`~.guard.HostPolicy`).
    :param allow_hosts: more Host names to answer (``cvaeq serve --allow-host``).
    """
    ex = explorer if explorer is not None else Explorer(**kwargs)
    lanes = Lanes(ex)

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            await run_in_threadpool(lanes.close)

    app = Starlette(
        routes=_Endpoints(ex, lanes).routes(),
        exception_handlers=dict(_HANDLERS),
        lifespan=lifespan,
        middleware=[Middleware(Guard, policy=HostPolicy(bound, allow_hosts))],
    )
    app.router.redirect_slashes = False  # a redirect would name the Host header back to the client
    app.state.explorer = ex
    app.state.lanes = lanes
    return app
