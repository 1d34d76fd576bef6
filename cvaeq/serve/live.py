"""A live explorer and a browser to look at it: for the browser tests and the benchmarks.

:func:`live_server` serves an app on a free port of 127.0.0.1 in a thread of
this process; :func:`browser` starts headless Chromium driven by Playwright
(``pip install playwright``, in the ``test`` extra).

Chromium comes from the system (Debian: ``apt-get install chromium``), not
from ``playwright install`` (whose download does not work on machines
without the internet); ``CVAEQ_CHROMIUM`` names another executable.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from contextlib import contextmanager

__all__ = ["live_server", "browser", "chromium_path", "missing", "HOW_TO_INSTALL"]

HOW_TO_INSTALL = (
    "the browser tests need Chromium and Playwright: apt-get install chromium (Debian/Ubuntu) "
    'and pip install -e ".[test]", or set CVAEQ_CHROMIUM=/path/to/chromium'
)


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when there is none."""
    named = os.environ.get("CVAEQ_CHROMIUM")
    if named:
        return named if os.path.exists(named) else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return HOW_TO_INSTALL
    return None if chromium_path() else HOW_TO_INSTALL


@contextmanager
def live_server(app, **bounds):
    """``app`` served by uvicorn on 127.0.0.1 at a free port, in a thread, as ``cvaeq serve``
    serves it (:func:`cvaeq.serve.connections.server_config`, ``bounds`` passed to it);
    yields its base URL."""
    import uvicorn

    from .connections import listen, server_config

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(server_config(app, **bounds))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def browser():
    """A headless Chromium (Playwright), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()
