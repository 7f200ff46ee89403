"""Counting a caller's HTTP requests exactly while other threads use the same client.

:func:`counting_calls` opens a count in the current context; every request a transport sends in that
context (and in pool jobs submitted from it: they run in a copy of the submitter's context) adds to it
through :func:`count_call`. A difference of a client's total ``api_calls`` would include the requests
of other threads.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager


class CallCounter:
    """HTTP requests counted by :func:`counting_calls`."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    def __repr__(self) -> str:
        return f"CallCounter(calls={self.calls})"


_CALL_COUNTER: contextvars.ContextVar[CallCounter | None] = contextvars.ContextVar(
    "portone_recon_call_counter", default=None
)


def count_call() -> None:
    """One request sent: counted by the count open in this context, if any (the caller holds its lock)."""
    counter = _CALL_COUNTER.get()
    if counter is not None:
        counter.calls += 1


@contextmanager
def counting_calls() -> Iterator[CallCounter]:
    """Count the HTTP requests made for the code inside (in this thread and the pool it uses)."""
    counter = CallCounter()
    token = _CALL_COUNTER.set(counter)
    try:
        yield counter
    finally:
        _CALL_COUNTER.reset(token)
