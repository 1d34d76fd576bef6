"""The explorer as another web page, a crowd of silent connections or a careless client meets it:
real sockets on 127.0.0.1, served as ``cvaeq serve`` serves (:func:`cvaeq.serve.live.live_server`).
Every loop here is bounded and stops by itself."""

import json
import select
import socket
import time

import pytest
from starlette.testclient import TestClient

from cvaeq.loading import WEIGHTS
from cvaeq.serve import live
from cvaeq.serve.app import create_app
from cvaeq.serve.connections import MAX_CONNECTIONS
from cvaeq.serve.explorer import Explorer
from cvaeq.serve.guard import SECURITY_HEADERS, HostPolicy

HEART = {"shape": "heart", "scale": "1", "orientation": "0", "posX": "0.5", "posY": "0.5"}


@pytest.fixture(scope="module")
def explorer():
    return Explorer()  # the shipped checkpoint


@pytest.fixture(scope="module")
def server(explorer):
    with live.live_server(create_app(explorer, bound="127.0.0.1"), request_timeout=1.0) as base:
        yield ("127.0.0.1", int(base.rsplit(":", 1)[1]))


def raw(address, request: bytes, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` on a new connection; the status, headers (lower case) and body of the reply."""
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(request)
        data = b""
        for _ in range(10_000):  # until the server closes (every request here says Connection: close)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def http(address, method="GET", path="/api/world", host="127.0.0.1", headers=None, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return raw(address, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def assert_json_error(status, headers, body, code):
    assert status == code, body
    assert headers["content-type"].startswith("application/json")
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, name
    error = json.loads(body)["error"]
    assert error and "\n" not in error
    return error


QUESTION = json.dumps({"query": "P(shape | do(scale=1))"}).encode()


def test_another_host_name_is_refused_and_ours_are_answered(server):
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header still says it
    error = assert_json_error(*http(server, host="evil.example:8000"), 421)
    assert "evil.example" in error and "--allow-host" in error
    for ours in ("127.0.0.1", f"127.0.0.1:{server[1]}", "localhost", f"localhost:{server[1]}", "[::1]"):
        status, headers, body = http(server, host=ours)
        assert status == 200, ours
        assert headers["x-frame-options"] == "DENY"


def test_allow_host_names_another_host():
    p = HostPolicy("127.0.0.1", ["box.lan"])
    assert p.allows("box.lan:8000") and p.allows("BOX.LAN.") and not p.allows("evil.example")
    assert HostPolicy("127.0.0.1", ["*"]).allows("anything.example")
    # on every interface, any address literal is this machine (an address is never rebound); names still are not
    assert HostPolicy("0.0.0.0").allows("192.168.1.20:8000") and not HostPolicy("0.0.0.0").allows("evil.example")
    assert not HostPolicy("127.0.0.1").allows("192.168.1.20")


def test_cross_origin_writes_are_refused(server):
    # a page of another site may POST text/plain without asking the browser first
    error = assert_json_error(*http(server, "POST", "/api/query", headers={"Content-Type": "text/plain"},
                                    body=QUESTION), 415)
    assert "application/json" in error
    assert_json_error(*http(server, "POST", "/api/query", body=QUESTION), 415)  # no type at all
    # JSON from another origin, or marked by the browser as another site's
    json_type = {"Content-Type": "application/json"}
    assert_json_error(*http(server, "POST", "/api/query", headers=json_type | {"Origin": "http://evil.example"},
                            body=QUESTION), 403)
    assert_json_error(*http(server, "POST", "/api/query", headers=json_type | {"Sec-Fetch-Site": "cross-site"},
                            body=QUESTION), 403)
    assert_json_error(*http(server, "GET", "/api/world", headers={"Sec-Fetch-Site": "same-site"}), 403)
    # the page's own requests, and a client that is no browser, are answered
    own = json_type | {"Origin": f"http://127.0.0.1:{server[1]}", "Sec-Fetch-Site": "same-origin"}
    status, _, body = http(server, "POST", "/api/query", host=f"127.0.0.1:{server[1]}", headers=own, body=QUESTION)
    assert status == 200 and json.loads(body)["rung"] == "interventional"
    assert http(server, "POST", "/api/query", headers=json_type, body=QUESTION)[0] == 200


def test_404_405_and_malformed_http_are_json_with_the_headers(server):
    error = assert_json_error(*http(server, path="/nowhere"), 404)
    assert "/nowhere" in error
    status, headers, body = http(server, path="/api/query")
    assert assert_json_error(status, headers, body, 405) and headers["allow"] == "POST"
    # a trailing slash is not redirected (a redirect would send the Host header back): 404
    status, headers, body = http(server, path="/api/world/")
    assert_json_error(status, headers, body, 404)
    assert "location" not in headers
    assert_json_error(*raw(server, b"NOT HTTP AT ALL\r\n\r\n"), 400)
    # headers beyond h11's 16 KiB, never ended
    assert_json_error(*raw(server, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000), 400)


def test_a_bug_is_a_json_500_with_the_headers_and_the_server_keeps_serving(explorer, monkeypatch):
    app = create_app(explorer)

    def broken(*a, **k):
        raise RuntimeError(f"a bug at {WEIGHTS}")

    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        monkeypatch.setattr(explorer, "describe", broken)
        r = c.get("/api/world")
        assert r.status_code == 500 and r.headers["x-frame-options"] == "DENY"
        assert "RuntimeError" in r.json()["error"] and str(WEIGHTS) not in r.text
        monkeypatch.undo()
        assert c.get("/api/world").status_code == 200


def test_no_server_path_in_any_response(server):
    status, _, body = http(server)
    assert status == 200 and json.loads(body)["model"] == "default.safetensors"
    question = json.dumps({"query": "P(X | do(posY=0.2), X=img)", "image": {"factors": HEART}}).encode()
    status, _, body = http(server, "POST", "/api/query", headers={"Content-Type": "application/json"}, body=question)
    assert status == 200
    for text in (body.decode(),):
        assert str(WEIGHTS) not in text and str(WEIGHTS.parent) not in text


def closed_among(sockets, wait: float) -> int:
    """How many of ``sockets`` the server has closed (readable, and reading gives no byte)."""
    readable, _, _ = select.select(sockets, [], [], wait)
    closed = 0
    for s in readable:
        try:
            closed += s.recv(1) == b""
        except OSError:  # reset: closed too
            closed += 1
    return closed


def test_300_idle_connections_neither_stay_open_nor_stop_a_good_request(explorer):
    # a deadline long enough that only the bound can close them while the test looks
    with live.live_server(create_app(explorer), request_timeout=120.0) as base:
        address = ("127.0.0.1", int(base.rsplit(":", 1)[1]))
        idle = []
        try:
            for _ in range(300):  # connect and say nothing: each used to hold a file of the server forever
                idle.append(socket.create_connection(address, timeout=10))
            start = time.monotonic()
            status, _, _ = http(address)
            assert status == 200 and time.monotonic() - start < 10
            # the oldest idle ones were closed to make room: at most MAX_CONNECTIONS stay open, and the
            # newest (those a person would be using) are among them
            time.sleep(0.5)
            still_open = len(idle) - closed_among(idle, 1.0)
            assert 0 < still_open <= MAX_CONNECTIONS
            assert closed_among(idle[-10:], 0.1) == 0
        finally:
            for s in idle:
                s.close()


def test_silent_connections_are_closed_at_the_request_deadline(server):
    silent = [socket.create_connection(server, timeout=10) for _ in range(5)]
    try:
        start = time.monotonic()
        closed = set()
        for _ in range(50):  # at most ~10 s; the deadline here is 1 s
            for s in silent:
                if s not in closed and closed_among([s], 0.04):
                    closed.add(s)
            if len(closed) == len(silent):
                break
        assert len(closed) == len(silent) and time.monotonic() - start < 8
    finally:
        for s in silent:
            s.close()


def test_a_request_sent_a_byte_at_a_time_is_cut_off(server):
    with socket.create_connection(server, timeout=10) as s:
        start = time.monotonic()
        s.sendall(b"GET /api/world HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the end of the headers
        closed = False
        for _ in range(100):  # at most ~10 s, a byte every 0.1 s
            try:
                s.sendall(b"X")
                s.settimeout(0.1)
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
        assert closed and time.monotonic() - start < 8


def test_a_body_that_does_not_arrive_is_a_408(server, monkeypatch):
    import cvaeq.serve.app as app_module

    monkeypatch.setattr(app_module, "BODY_TIMEOUT_S", 0.5)
    with socket.create_connection(server, timeout=30) as s:
        s.sendall(b"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\nConnection: close\r\n\r\n{")
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 408") and b'"error"' in data
