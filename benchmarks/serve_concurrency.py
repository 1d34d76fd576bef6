"""Benchmark: many people on one explorer at once — 20 clients x 50 questions each.

``cvaeq serve`` runs in its own process, as a user runs it; 20 client threads
each ask 50 questions over their own keep-alive connection: the page's
100-particle image counterfactual with the intervention and the seed drawn per
question (every few questions a bad one, which must be a 400 while the rest
keep being answered), each followed by a fetch of the answer's mean image.
Prints the latencies (p50, p95, max), the throughput and the number of
errors (anything but the expected status, a dropped connection, a crash);
target: no error. The load average is printed beside the figures.

    python benchmarks/serve_concurrency.py [--clients 20] [--requests 50] [--bad-every 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_latency import Client, load, percentile, start_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=50, help="questions per client")
    ap.add_argument("--bad-every", type=int, default=10, help="every n-th question is a bad one (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="the server's --threads")
    args = ap.parse_args()

    proc, host, port = start_server("--threads", str(args.threads))
    world = json.loads(Client(host, port).get("/api/world"))
    factor = world["query"].split("do(")[1].split("=")[0]
    values = next(f["values"] for f in world["factors"] if f["name"] == factor)
    latencies: list[float] = []
    errors: list[str] = []
    refused = 0
    lock = threading.Lock()

    def client(i: int) -> None:
        nonlocal refused
        rng = random.Random(i)
        c = Client(host, port)
        for k in range(args.requests):
            bad = args.bad_every and (k + 1) % args.bad_every == 0
            query = (f"P(X | do({factor}=nowhere), X=img)" if bad
                     else f"P(X | do({factor}={rng.choice(values)}), X=img)")
            body = json.dumps({"query": query, "image": {"factors": world["evidence"]}, "seed": rng.randrange(1000)})
            t0 = time.perf_counter()
            try:
                r = c._send("POST", "/api/query", body, {"Content-Type": "application/json"})
                answer = json.loads(r.read())
                if bad:
                    ok = r.status == 400 and "\n" not in answer.get("error", "\n")
                else:
                    ok = r.status == 200
                    if ok:
                        c.get(answer["images"]["mean"])
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    if not ok:
                        errors.append(f"client {i} question {k}: status {r.status} {str(answer)[:120]}")
                    elif bad:
                        refused += 1
                    else:
                        latencies.append(ms)
            except Exception as e:  # a dropped connection or a crash is what this benchmark looks for
                with lock:
                    errors.append(f"client {i} question {k}: {type(e).__name__}: {e}")
                c = Client(host, port)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    alive = proc.poll() is None
    try:
        Client(host, port).get("/api/world")
    except Exception as e:
        errors.append(f"the server stopped answering afterwards: {e}")
    proc.terminate()
    proc.wait(30)
    total = args.clients * args.requests
    print(f"{args.clients} clients x {args.requests} questions (P(X | do({factor}=v), X=img), 100 particles, "
          f"the true counterfactual beside it, then its mean image; every {args.bad_every}th a bad query), "
          f"cvaeq serve --threads {args.threads}; {os.cpu_count()} CPUs, {load()}")
    print(f"  answered {len(latencies)}, refused as they should be (400) {refused}, errors {len(errors)}, "
          f"server alive {alive}; {total / wall:.1f} questions/s over {wall:.1f} s")
    if latencies:
        print(f"  latency of an answered question (with its picture): p50 {statistics.median(latencies):.0f} ms   "
              f"p95 {percentile(latencies, 95):.0f} ms   max {max(latencies):.0f} ms")
    for e in errors[:10]:
        print("  error:", e)
    sys.exit(1 if errors or not alive else 0)


if __name__ == "__main__":
    main()
