"""Who may ask the explorer: its Host names, same-origin writes, and the headers of every response.

A server on 127.0.0.1 is still reachable from any web page the user opens:
the browser sends that page's requests to it. Two ways in are closed here.

* **DNS rebinding**: a page of ``evil.example`` whose name later resolves to
  127.0.0.1 is, to the browser, the same origin as the explorer and may read
  its answers. Such a request still says ``Host: evil.example``; only the
  names of this server are answered (:class:`HostPolicy`): ``localhost``,
  loopback addresses (127.x, ``[::1]``), the address it is bound to (any
  address literal when it listens on every interface: an address is never
  rebound), and the names the user allows (``cvaeq serve --allow-host NAME``).
* **Cross-site writes**: a page may POST a "simple" request (``text/plain``,
  a form) to any address without asking. A POST is answered only when it is
  JSON (a browser must ask first before sending that cross-origin, and the
  explorer never says yes), its ``Origin``, when sent, is the server's own,
  and ``Sec-Fetch-Site``, when sent, is ``same-origin`` or ``none``; a read of
  ``/api/`` that the browser marks as another site's is refused too.

:class:`Guard` is the ASGI middleware doing both and adding
:data:`SECURITY_HEADERS` to every response, refusals and errors included.
Every refusal is a JSON ``{"error": LINE}``, as every error of the API.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

__all__ = ["HostPolicy", "Guard", "SECURITY_HEADERS", "error_response", "host_name", "is_loopback", "is_wildcard"]

#: Headers of every response: no framing, no sniffing, nothing from elsewhere, no inline script.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
    "Referrer-Policy": "no-referrer",
}
_RAW_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
#: Host names that are this machine whatever it is bound to.
LOOPBACK_NAMES = ("localhost",)
#: The media type of a question (parameters such as ``charset=utf-8`` are allowed).
JSON_TYPE = "application/json"


def error_response(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message}`` on one line, with :data:`SECURITY_HEADERS` (and ``headers``)."""
    return JSONResponse(
        {"error": " ".join(str(message).split())}, status_code=status, headers=SECURITY_HEADERS | (headers or {})
    )


def host_name(header: str) -> str:
    """The name of a ``Host`` header, lower case, without the port, brackets or a final dot:
    ``"[::1]:8000"`` → ``"::1"``, ``"LocalHost.:80"`` → ``"localhost"``."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:].partition("]")[0]
    if h.count(":") == 1:
        h = h.partition(":")[0]
    return h.rstrip(".")


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server to this machine."""
    a = _address(host_name(host)) if host else None
    return host_name(host) in LOOPBACK_NAMES or (a is not None and a.is_loopback)


def is_wildcard(host: str) -> bool:
    """Whether ``host`` listens on every interface (``0.0.0.0``, ``::``, ``0``, ``""``)."""
    if host.strip() in ("", "0"):
        return True
    a = _address(host_name(host))
    return a is not None and a.is_unspecified


class HostPolicy:
    """The ``Host`` names a server answers (see the module's docstring).

    :param bound: the address the server listens on (None: loopback names only).
    :param allow: more names the user allows; ``"*"`` allows any.

    >>> p = HostPolicy("127.0.0.1")
    >>> [p.allows(h) for h in ("localhost:8000", "127.0.0.1", "[::1]:8000", "evil.example", "10.0.0.5")]
    [True, True, True, False, False]
    >>> HostPolicy("0.0.0.0", ["box.lan"]).allows("10.0.0.5"), HostPolicy("0.0.0.0", ["box.lan"]).allows("BOX.lan:80")
    (True, True)
    """

    def __init__(self, bound: str | None = None, allow: Iterable[str] = ()):
        self.bound = host_name(bound) if bound else None
        self.wildcard = bound is not None and is_wildcard(bound)
        self.allow = {host_name(n) for n in allow if n.strip()}

    def allows(self, header: str) -> bool:
        """Whether a request whose ``Host`` header is ``header`` is answered."""
        name = host_name(header)
        if not name:
            return False
        if "*" in self.allow or name in self.allow or name in LOOPBACK_NAMES:
            return True
        a = _address(name)
        if a is None:
            return False
        return a.is_loopback or self.wildcard or (self.bound is not None and a == _address(self.bound))

    def names(self) -> str:
        """The names answered, for messages."""
        shown = ["localhost", "127.0.0.1", "[::1]"]
        if self.wildcard:
            shown.append("any address of this machine")
        elif self.bound and not is_loopback(self.bound):
            shown.append(f"[{self.bound}]" if ":" in self.bound else self.bound)
        return ", ".join(shown + sorted(self.allow))


class Guard:
    """ASGI middleware: refuse other sites and other Host names; security headers on every response."""

    def __init__(self, app, policy: HostPolicy | None = None):
        self.app = app
        self.policy = policy or HostPolicy()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in _RAW_HEADERS if k not in have
                ]
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope) -> JSONResponse | None:
        """The response refusing this request, or None to answer it."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.policy.allows(host):
            shown = " ".join(host.split())[:100] or "(none)"
            return error_response(
                f"this server does not answer the Host name {shown!r} (another site's page may be reaching it "
                f"through DNS rebinding); it answers {self.policy.names()}; "
                f"start it with --allow-host NAME to answer another name",
                421,
            )
        method, path = scope["method"], scope["path"]
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        writes = method not in ("GET", "HEAD", "OPTIONS")
        if origin is not None and (writes or path.startswith("/api/")):
            own = f"{scope.get('scheme', 'http')}://{host.strip().lower()}"
            if origin.strip().lower() != own:
                return error_response(
                    f"cross-origin request refused: a page of {origin[:100]!r} may not use "
                    "this server; open the explorer's own page",
                    403,
                )
        if site is not None and (writes or path.startswith("/api/")) and site not in ("same-origin", "none"):
            return error_response(
                f"cross-site request refused (Sec-Fetch-Site: {site[:40]}); open the explorer's own page", 403
            )
        if method == "POST":
            media = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media != JSON_TYPE:
                return error_response(
                    f"send the question as JSON with Content-Type: {JSON_TYPE} (got {media[:60] or 'none'!r})", 415
                )
        return None
