"""The client's request pool: foreground before background, never more than its workers at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest

from portone_recon.api._pool import PriorityPool, background


def test_foreground_jobs_run_before_queued_background_ones() -> None:
    pool = PriorityPool(1, "t")
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(gate.wait)
    with background():
        bg = [pool.submit(order.append, f"bg{i}") for i in range(3)]
    fg = [pool.submit(order.append, f"fg{i}") for i in range(2)]
    gate.set()
    for f in [blocker, *bg, *fg]:
        f.result(timeout=5)
    assert order == ["fg0", "fg1", "bg0", "bg1", "bg2"]
    pool.shutdown()


def test_never_more_in_flight_than_workers_across_threads() -> None:
    pool = PriorityPool(3, "t")
    lock = threading.Lock()
    now = peak = 0

    def job() -> None:
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        time.sleep(0.01)
        with lock:
            now -= 1

    def submitter(bg: bool) -> None:
        if bg:
            with background():
                futs = [pool.submit(job) for _ in range(20)]
        else:
            futs = [pool.submit(job) for _ in range(20)]
        for f in futs:
            f.result(timeout=10)

    threads = [threading.Thread(target=submitter, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.shutdown()
    assert peak == 3


def test_errors_reach_the_caller_and_shutdown_cancels_what_waits() -> None:
    pool = PriorityPool(1, "t")

    def boom() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        pool.submit(boom).result(timeout=5)
    gate = threading.Event()
    running = pool.submit(gate.wait)
    queued = pool.submit(time.sleep, 0)
    threading.Timer(0.05, gate.set).start()
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.result(timeout=1) is True
    with pytest.raises(CancelledError):
        queued.result(timeout=1)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(time.sleep, 0)
