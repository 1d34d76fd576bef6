"""`cvaeq serve` as a user runs it: a process that prints its address, answers, and
stops cleanly on Ctrl-C; an address it cannot take is one line and exit code 2."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START = "from cvaeq.cli import main; main()"


def start(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen([sys.executable, "-c", START, "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_serve_prints_its_address_answers_and_stops_on_ctrl_c():
    proc = start("--story", "pendulum", "--port", "0", "--seed", "4")
    try:
        line = proc.stdout.readline()
        m = re.match(r"cvaeq explorer: (http://127\.0\.0\.1:(\d+)/) ", line)
        assert m, line
        base = m.group(1)
        world = json.load(urllib.request.urlopen(base + "api/world", timeout=60))
        # --story pendulum: the pendulum's world, with the model shipped for its story
        assert world["story"] == "pendulum" and world["seed"] == 4 and world["has_model"]
        question = {"query": world["query"], "image": {"factors": world["evidence"]}}
        req = urllib.request.Request(base + "api/query", data=json.dumps(question).encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(req, timeout=60))
        assert answer["rung"] == "counterfactual" and answer["model"].endswith("pendulum.safetensors")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_an_address_in_use_is_one_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = start("--story", "default", "--port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "in use" in err


def test_a_bad_host_is_one_line_and_exit_2():
    proc = start("--story", "default", "--host", "not a host name\u2603", "--port", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_answers_are_not_held_back_by_nagle():
    """Responses go out in several writes; on a kept-alive connection Nagle's algorithm would
    hold the body until the client's delayed ACK (40 ms on Linux). The accepted connections
    inherit TCP_NODELAY from the listening socket."""
    from cvaeq.serve.connections import listen

    with listen("127.0.0.1", 0) as server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def _get(base, host=None):
    req = urllib.request.Request(base + "api/world", headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_every_interface_is_said_plainly_and_other_names_are_refused_unless_allowed():
    # "0" is what bind() reads as every interface: the warning says who can now reach the explorer
    proc = start("--story", "default", "--host", "0", "--port", "0", "--allow-host", "box.example")
    try:
        line = proc.stdout.readline()
        m = re.match(r"cvaeq explorer: (http://127\.0\.0\.1:(\d+)/) ", line)
        assert m, line
        base = m.group(1)
        assert _get(base)[0] == 200 and _get(base, "box.example")[0] == 200
        status, answer = _get(base, "evil.example")  # DNS rebinding: the name still says it is another site
        assert status == 421 and "evil.example" in answer["error"]
        assert "/" not in _get(base)[1]["model"]  # the model by its file name, no server path
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    warning = [w for w in err.splitlines() if w.startswith("warning: ")]
    assert len(warning) == 1 and "every network interface" in warning[0] and "anyone" in warning[0]
    assert f"port {m.group(2)}" in warning[0] and "127.0.0.1" in warning[0]


def test_loopback_says_no_warning():
    proc = start("--story", "default", "--host", "localhost", "--port", "0")
    try:
        line = proc.stdout.readline()
        assert line.startswith("cvaeq explorer: http://127.0.0.1:"), line
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert "warning" not in err
