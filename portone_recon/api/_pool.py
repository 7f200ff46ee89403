"""The client's request pool: ``concurrency`` threads, foreground requests first.

Several readers can share one client: a sync lists payments while it looks up billing keys and lists
schedules for later. They share one pool, so no more than ``concurrency`` requests are ever in flight;
work submitted inside :func:`background` runs only when no foreground work waits, so the listing whose
turn is next is not slowed down by the ones being fetched for later. Within a class, first come, first
served.
"""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

R = TypeVar("R")

_BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("portone_recon_background", default=False)

#: Queue entry: (class, sequence, future, function, arguments); class 0 is foreground, 1 background.
_Job = tuple[int, int, "Future[Any] | None", Callable[..., Any] | None, tuple[Any, ...]]


@contextmanager
def background() -> Iterator[None]:
    """Requests submitted by this thread (or task) inside the block yield to foreground ones."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


class PriorityPool:
    """A fixed pool of ``workers`` threads taking foreground jobs before background ones."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = max(1, workers)
        self._name = name
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut = False

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]:
        """Run ``fn(*args)`` on the pool; its class is that of the submitting context."""
        fut: Future[R] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit to a pool that is shut down")
            if not self._threads:
                for i in range(self._workers):
                    t = threading.Thread(target=self._work, name=f"{self._name}_{i}", daemon=True)
                    t.start()
                    self._threads.append(t)
            self._queue.put((1 if _BACKGROUND.get() else 0, next(self._seq), fut, fn, args))
        return fut

    def _work(self) -> None:
        while True:
            _, _, fut, fn, args = self._queue.get()
            if fut is None or fn is None:
                return  # shutdown sentinel
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop the threads after the jobs they run (and, unless ``cancel_futures``, the queued ones)."""
        with self._lock:
            self._shut = True
            threads, self._threads = self._threads, []
            if cancel_futures:
                while True:
                    try:
                        _, _, fut, _, _ = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if fut is not None:
                        fut.cancel()
            for _ in threads:  # sentinels sort after every job
                self._queue.put((2, next(self._seq), None, None, ()))
        if wait:
            for t in threads:
                t.join()
