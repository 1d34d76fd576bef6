"""Two lanes for the explorer's questions, so that small ones never wait behind a big one.

The engine answers one question at a time in a process: it seeds torch's
global random generator (forked), and two questions sharing it at once would
not get the same answer for the same seed. A big question (thousands of
pictures decoded) holding that one engine for seconds would hold every
person's small question too. So questions go by their cost
(:attr:`~cvaeq.serve.explorer.Question.pictures`, particles):

* **small** ones (at most :data:`LANE_PICTURES` pictures and
  :data:`LANE_PARTICLES` particles: every question the page's controls ask by
  default) are answered in this process, in a worker thread, one at a time;
* **big** ones in a separate worker process with its own engine and random
  generator, one at a time. The worker is replaced after each big question,
  so the memory a big question took goes back to the system with the
  process; the next worker is started (and its model loaded) right away, in
  the background, so that it is ready for the next big question (the first
  big question waits for its worker to start: a few seconds).

Each lane admits a bounded number of questions (:data:`SMALL_WAITING`,
:data:`BIG_WAITING`, the one being answered included); beyond that a
question gets a JSON 503 saying to ask again, never a wait without end.
A question's answer is the same in either lane (same code, same seed, the
same torch threads).

An explorer made from objects rather than names (``Explorer(model=net)``)
cannot be rebuilt in another process: its big questions are answered in
this process, in their own queue behind the small lane's lock.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..errors import ENVIRONMENT_ERRORS, CvaeqError, QueryError, one_line
from .explorer import Explored, Explorer, Question

__all__ = ["Lanes", "Busy", "LANE_PICTURES", "LANE_PARTICLES", "SMALL_WAITING", "BIG_WAITING"]

#: A question decoding more pictures than this (particles x worlds with an image) is big: about a
#: second on the 2-core development CPU under load; the page's first question decodes 200.
LANE_PICTURES = 2048
#: A question of more particles than this is big (factor questions: 1,000 by default).
LANE_PARTICLES = 10_000
#: Small questions admitted at once (answered one at a time).
SMALL_WAITING = 32
#: Big questions admitted at once (answered one at a time, in the worker process).
BIG_WAITING = 2


class Busy(Exception):
    """A question refused for now (503): the lane is full, or its worker died."""


def is_big(q: Question) -> bool:
    """Whether ``q`` goes to the big lane."""
    particles = q.samples if q.samples is not None else 0
    return q.pictures > LANE_PICTURES or particles > LANE_PARTICLES


# ------------------------------------------------------------ the worker process

_explorer: Explorer | None = None


def _start(spec: dict, threads: int) -> None:
    import torch

    global _explorer
    torch.set_num_threads(threads)
    _explorer = Explorer(**spec)


def _answer(text, image, samples, seed):
    """A question answered in the worker: ``("ok", Explored)`` or ``(kind, line)`` for an error."""
    assert _explorer is not None  # _start made it before the worker said it was ready
    try:
        explored = _explorer.ask(text, image, samples, seed)
        # the engine's particles stay here: the answer, its pictures and numbers are what the server shows
        return "ok", replace(explored, answer=replace(explored.answer, result=None))
    except CvaeqError as e:
        return "refused", str(e)
    except ENVIRONMENT_ERRORS as e:
        return ("memory" if isinstance(e, MemoryError) else "environment"), one_line(e)


def _serve_one(conn, spec: dict, threads: int) -> None:
    """The worker process: load the explorer, say so, answer one question, exit."""
    try:
        _start(spec, threads)
    except Exception as e:  # the parent loaded the same model: this is the machine (memory, files)
        conn.send(("environment", f"the worker for large questions could not start: {type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    try:
        question = conn.recv()
    except EOFError:
        return
    conn.send(_answer(*question))


class _Worker:
    """One worker process (spawned: a fresh interpreter with its own torch), for one big question.

    Made by hand rather than with :class:`concurrent.futures.ProcessPoolExecutor`,
    whose ``max_tasks_per_child`` (Python 3.11) can leave submitted work with
    no process to run it when a worker retires.
    """

    def __init__(self, spec: dict, threads: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve_one, args=(child, spec, threads), daemon=True, name="cvaeq-serve-big-question"
        )
        self.process.start()
        child.close()

    def ask(self, question: tuple) -> tuple[str, Any]:
        """The worker's answer to ``question`` (blocks: for a thread); ``("died", None)`` if it died."""
        try:
            kind, value = self.conn.recv()  # "ready" once its model is loaded
            if kind != "ready":
                return kind, value
            self.conn.send(question)
            return self.conn.recv()
        except (EOFError, OSError):
            return "died", None
        finally:
            self.stop()

    def stop(self) -> None:
        """End the process (it has answered, or is no longer wanted)."""
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# ------------------------------------------------------------ the lanes


class Lanes:
    """The two lanes of one explorer (module docstring)."""

    def __init__(self, explorer: Explorer, small_waiting: int = SMALL_WAITING, big_waiting: int = BIG_WAITING):
        self.explorer = explorer
        self.small_waiting, self.big_waiting = small_waiting, big_waiting
        self._small = 0
        self._big = 0
        self._worker: _Worker | None = None
        #: the worker process answering a big question now, if any
        self.answering: _Worker | None = None
        self._big_lock = asyncio.Lock()

    def lane(self, q: Question) -> str:
        """``"small"`` or ``"big"``."""
        return "big" if is_big(q) else "small"

    async def ask(self, text, image=None, samples=None, seed=None) -> Explored:
        """Answer a question in its lane; a refusal is raised as :meth:`Explorer.ask` raises it."""
        # reads and checks (an uploaded PNG decoded, the evidence rendered): off the event loop too
        q = await run_in_threadpool(self.explorer.prepare, text, image, samples, seed)
        if not is_big(q):
            if self._small >= self.small_waiting:
                raise Busy(f"the server is answering {self._small} questions; ask again in a moment")
            self._small += 1
            try:
                return await run_in_threadpool(self.explorer.answer, q)
            finally:
                self._small -= 1
        if self._big >= self.big_waiting:
            raise Busy(
                f"the server is answering {self._big} large questions (over {LANE_PICTURES:,} pictures or "
                f"{LANE_PARTICLES:,} particles); ask again later, or with fewer samples"
            )
        self._big += 1
        try:
            async with self._big_lock:
                if self.explorer.spec is None:
                    return await run_in_threadpool(self.explorer.answer, q)
                return await self._in_worker(q)
        finally:
            self._big -= 1

    def _next_worker(self) -> _Worker:
        import torch

        spec = self.explorer.spec
        assert spec is not None  # ask() sends a question here only when the explorer has a spec
        return _Worker(spec, torch.get_num_threads())

    async def _in_worker(self, q: Question) -> Explored:
        worker, self._worker = self._worker or self._next_worker(), None
        self.answering = worker
        try:
            kind, value = await run_in_threadpool(worker.ask, (q.text, q.image, q.samples, q.seed))
        finally:
            self.answering = None
        self._worker = self._next_worker()  # the next one loads its model now, to be ready for the next question
        if kind == "ok":
            return value
        if kind == "refused":
            raise QueryError(value)
        if kind == "died":
            raise Busy("the worker answering large questions stopped (out of memory?); ask again with fewer samples")
        if kind == "memory":
            raise MemoryError(value)
        raise OSError(value)

    def close(self) -> None:
        """Stop the waiting worker process, if any."""
        if self._worker is not None:
            self._worker.process.kill()
            self._worker.stop()
            self._worker = None
