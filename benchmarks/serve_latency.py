"""Benchmark: a control moved on the explorer's page to a new answer picture.

The question is the page's first one with the shipped model: a 100-particle image
counterfactual ``P(X | do(F=v), X=img)`` about a rendered image (F a factor no
other factor depends on), with the true counterfactual computed beside it. A
"move" sets the intervention to another value; it is timed two ways, in
interleaved rounds so that both see the same machine load:

* server side: an HTTP client sends the question and fetches every picture of
  the answer (evidence, samples, mean, truth) over one keep-alive connection;
* through the browser: headless Chromium (Playwright, the system's Chromium)
  moves the slider; the page records the time from the input event to the
  last picture decoded (``window.cvaeq.timings``).

Two servers are compared, ``cvaeq serve --threads 1`` and ``--threads 2``
(torch's CPU threads per answer), each ``cvaeq serve`` in its own process as
a user runs it, their rounds interleaved. Prints p50 and p95 of each in ms with
the load average; target: p95 < 150 ms.

    python benchmarks/serve_latency.py [--moves 60] [--rounds 6] [--threads 1,2] [--model CKPT]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(*args: str) -> tuple[subprocess.Popen, str, int]:
    """``cvaeq serve --port 0`` in a child process: the process, its host and port."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-c", "from cvaeq.cli import main; main()", "serve", "--port", "0",
                             *args], stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.match(r"cvaeq explorer: http://([\d.]+):(\d+)/", line)
    if not m:
        proc.kill()
        sys.exit(f"the server did not start: {line!r}")
    return proc, m.group(1), int(m.group(2))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))]


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


class Client:
    """A keep-alive HTTP client of the explorer."""

    def __init__(self, host: str, port: int):
        self.conn = http.client.HTTPConnection(host, port, timeout=120)

    def _send(self, *request):
        """The response to ``request``, reconnecting once if the server closed an idle connection."""
        for attempt in (0, 1):
            try:
                if self.conn.sock is None:  # as browsers do: no Nagle wait between headers and body
                    self.conn.connect()
                    self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.conn.request(*request)
                return self.conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt:
                    raise

    def get(self, path: str) -> bytes:
        r = self._send("GET", path)
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
        return body

    def post(self, path: str, body: dict) -> dict:
        r = self._send("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        data = json.loads(r.read())
        if r.status != 200:
            raise RuntimeError(f"POST {path}: {r.status} {data}")
        return data


def server_move(client: Client, query: str, evidence: dict) -> float:
    t0 = time.perf_counter()
    a = client.post("/api/query", {"query": query, "image": {"factors": evidence}})
    for url in a["images"].values():
        client.get(url)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=60, help="moves timed each way, per server")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds (moves are split among them)")
    ap.add_argument("--threads", default="1,2", help="the servers' --threads to compare, interleaved")
    ap.add_argument("--model", help="checkpoint (default: the shipped one)")
    args = ap.parse_args()

    from cvaeq.serve.live import browser, missing

    settings = [int(t) for t in args.threads.split(",")]
    servers = {t: start_server("--threads", str(t), *(["--model", args.model] if args.model else []))
               for t in settings}
    server_ms = {t: [] for t in settings}
    browser_ms = {t: [] for t in settings}
    why = missing()
    try:
        clients = {t: Client(host, port) for t, (_, host, port) in servers.items()}
        world = json.loads(clients[settings[0]].get("/api/world"))
        first = world["query"]
        factor = first.split("do(")[1].split("=")[0]
        values = next(f["values"] for f in world["factors"] if f["name"] == factor)
        evidence = world["evidence"]
        per_round = max(1, args.moves // args.rounds)
        for c in clients.values():
            for v in values[:3]:  # warm-up
                server_move(c, f"P(X | do({factor}={v}), X=img)", evidence)
        with (browser() if why is None else _none()) as chromium:
            pages = {}
            if chromium is not None:
                for t, (_, host, port) in servers.items():
                    pages[t] = chromium.new_page(viewport={"width": 1400, "height": 1000})
                    pages[t].goto(f"http://{host}:{port}/")
                    pages[t].wait_for_function("() => window.cvaeq.answers >= 1", timeout=120_000)
            k = 0
            for _ in range(args.rounds):
                for t in settings:
                    clients[t].get("/api/world")  # untimed: reopens the connection an idle round let close
                    for _ in range(per_round):
                        k += 1
                        query = f"P(X | do({factor}={values[k % len(values)]}), X=img)"
                        server_ms[t].append(server_move(clients[t], query, evidence))
                    page = pages.get(t)
                    for _ in range(per_round if page is not None else 0):
                        k += 1
                        n = page.evaluate("() => window.cvaeq.answers")
                        page.fill(f"#dov-{factor}", str(k % len(values)))
                        page.wait_for_function("(n) => window.cvaeq.answers > n", arg=n, timeout=120_000)
                        browser_ms[t].append(page.evaluate("() => window.cvaeq.timings.at(-1)"))
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    print(f"P(X | do({factor}=v), X=img), 100 particles, the true counterfactual beside it; world {world['world']}; "
          f"{per_round * args.rounds} moves each way per server in {args.rounds} interleaved rounds; "
          f"{os.cpu_count()} CPUs, {load()}")
    for t in settings:
        s = server_ms[t]
        print(f"  cvaeq serve --threads {t}, server side (question + every picture): "
              f"p50 {statistics.median(s):.1f} ms   p95 {percentile(s, 95):.1f} ms   max {max(s):.1f} ms")
        b = browser_ms[t]
        if b:
            print(f"  cvaeq serve --threads {t}, through the browser (input event -> last picture decoded): "
                  f"p50 {statistics.median(b):.1f} ms   p95 {percentile(b, 95):.1f} ms   max {max(b):.1f} ms")
        else:
            print(f"  cvaeq serve --threads {t}, through the browser: not measured ({why})")


class _none:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
