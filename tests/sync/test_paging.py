"""The client's window paging (``api.paging.Pager``): one bounded pool across windows, pages yielded in a
stable order."""

from __future__ import annotations

import threading
import time
from typing import Any

from portone_recon.api.envelope import RawPage
from portone_recon.api.paging import Pager
from portone_recon.api.transport import Transport
from portone_recon.config import Secret, Settings


def test_windows_share_one_bounded_pool_and_yield_in_order(monkeypatch: Any) -> None:
    sizes = {0: 3, 1: 1, 2: 5, 3: 2}  # pages per window
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    order: list[tuple[int, int]] = []

    def fake(self: Pager, path: str, endpoint: str, base: Any, page: int) -> RawPage:
        w = int(dict(base)["from"])
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            order.append((w, page))
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        n = sizes[w]
        items = [{"imp_uid": f"{w}-{page}-{i}"} for i in range(2)]
        return RawPage(
            endpoint=endpoint,
            params=(*base, ("page", str(page))),
            total=2 * n,
            next=page + 1 if page < n else 0,
            items=items,
            body=b"{}",
            page=page,
            previous=page - 1,
        )

    monkeypatch.setattr(Pager, "fetch_page", fake)
    transport = Transport(Settings(imp_key="k", imp_secret=Secret("s"), concurrency=3))
    pager = Pager(transport, 3)
    try:
        bases = [(("from", str(w)), ("to", str(w + 1))) for w in sizes]
        got = [
            (int(dict(p.params)["from"]), p.page)
            for p in pager.window_pages("/x", "/x", bases, concurrent=True)
        ]
    finally:
        pager.close()
        transport.close()
    assert got == [(w, p) for w, n in sizes.items() for p in range(1, n + 1)]
    assert sorted(order) == sorted(got)  # every page fetched exactly once
    assert state["max"] <= 3
    # Page 1 of every window went out before window 0 was finished (not one window after another).
    assert order.index((3, 1)) < order.index((0, 3))


def test_counting_calls_is_exact_per_thread_while_threads_share_the_pool() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ._world import build_world

    w = build_world(customers=30, months=12)
    with w.client(concurrency=3) as client:
        client.server_now()  # the token call, outside any counter
        before = client.api_calls

        def listing(status: str) -> tuple[int, int]:
            with client.counting_calls() as counter:
                pages = list(client.iter_payment_pages(status, 0, 2_000_000_000, limit=5))
            return counter.calls, len(pages)

        with ThreadPoolExecutor(2) as pool:
            paid, failed = pool.map(listing, ["paid", "failed"])
        total = client.api_calls - before
    assert paid[1] > 20 and failed[1] >= 1  # many pages, fetched through the shared pool
    assert paid[0] == paid[1] and failed[0] == failed[1]  # one call per page, each counted once
    assert paid[0] + failed[0] == total
