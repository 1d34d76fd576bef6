"""The explorer's connections: every one times out, and there are never more than a bound.

uvicorn (0.55) closes a kept-alive connection :data:`KEEP_ALIVE_S` after its
last response, but only once a response was sent, and any byte received
cancels that timer: a connection that says nothing, or sends a request's
headers a byte a minute, is kept forever, and a few hundred of them exhausted
the server's files (good requests timed out). :class:`BoundedH11` adds what
uvicorn lacks:

* **a request deadline**: from the moment a connection opens, and again from
  each response, a complete request (its headers) must arrive within
  :data:`REQUEST_TIMEOUT_S`, or the connection is closed; a body must arrive
  within :data:`BODY_TIMEOUT_S` of its headers (:mod:`.app` answers 408);
* **a bound on their number**: at most :data:`MAX_CONNECTIONS` open at once.
  A new connection beyond it closes the oldest *idle* one (waiting for a
  request, not being answered), so that silent connections cannot crowd out
  a person's; when all are busy, the new one is closed at once;
* **JSON for malformed HTTP**: h11's refusals (a request line or headers
  beyond h11's 16 KiB, bad syntax) are ``{"error": ...}`` 400s with the
  security headers, as every other error.

:func:`server_config` is the uvicorn configuration of ``cvaeq serve`` and of
the tests' live server; :func:`listen` opens the socket both serve on.
"""

from __future__ import annotations

import asyncio
import json
import socket

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import CvaeqError
from .guard import SECURITY_HEADERS

__all__ = [
    "BoundedH11",
    "server_config",
    "listen",
    "MAX_CONNECTIONS",
    "REQUEST_TIMEOUT_S",
    "KEEP_ALIVE_S",
    "BODY_TIMEOUT_S",
]

#: Most connections open at once (a browser opens about 6 to a server).
MAX_CONNECTIONS = 64
#: Seconds a connection may take to send a request's headers, from its opening or its last response.
REQUEST_TIMEOUT_S = 10.0
#: Seconds an idle kept-alive connection is kept after a response (uvicorn's ``timeout_keep_alive``).
KEEP_ALIVE_S = 5
#: Seconds a request's body may take to arrive after its headers.
BODY_TIMEOUT_S = 10.0


class BoundedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a request deadline and a bound on connections (module docstring)."""

    max_connections = MAX_CONNECTIONS
    request_timeout = REQUEST_TIMEOUT_S

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()
        self._make_room()

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        """Start (again) the time a request has to arrive in."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._since = self.loop.time()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self._idle():  # no request arrived (or is being answered) since the deadline was set
            self._close()

    def _close(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        """Keep at most :attr:`max_connections`: close the oldest idle ones, else this new one."""
        excess = len(self.connections) - self.max_connections
        if excess <= 0:
            return
        idle = sorted(
            (
                c
                for c in self.connections
                if c is not self and isinstance(c, BoundedH11) and c._idle() and not c.transport.is_closing()
            ),
            key=lambda c: c._since,
        )
        for c in idle[:excess]:
            c._close()
            self.connections.discard(c)
        if len(self.connections) > self.max_connections:
            self._close()
            self.connections.discard(self)

    def connection_lost(self, exc) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": f"{msg} (malformed HTTP, or a request line or headers over 16 KiB)"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
        try:
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # a response had begun already: nothing more can be said
            pass
        self._close()


def server_config(app, *, max_connections: int = MAX_CONNECTIONS, request_timeout: float = REQUEST_TIMEOUT_S):
    """The uvicorn configuration of the explorer: :class:`BoundedH11` with these bounds, no websockets,
    no access log, a short graceful shutdown."""
    import uvicorn

    protocol = type(
        "BoundedH11", (BoundedH11,), {"max_connections": max_connections, "request_timeout": request_timeout}
    )
    return uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=2,
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host is one; port 0: any free port).

    An address in use is an ``OSError``; a host that is no address a
    :class:`~cvaeq.errors.CvaeqError`.
    """
    if host.strip() in ("", "0"):  # what bind() reads as every interface, said plainly
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # answers go out in more than one write (headers, body): without this, a kept-alive
        # connection waits for the client's delayed ACK (40 ms on Linux) before the body
        # (the connections accepted from this socket inherit it)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    except (UnicodeError, ValueError) as e:  # a host name that is no name
        sock.close()
        raise CvaeqError(f"--host {host!r} is not an address to listen on ({e})") from None
    sock.set_inheritable(True)
    return sock
