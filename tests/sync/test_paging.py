"""The client's window paging: one bounded pool across windows, pages yielded in a stable order."""

from __future__ import annotations

import threading
import time
from typing import Any

from portone_recon.api.client import PortOneClient
from portone_recon.api.envelope import RawPage


def test_windows_share_one_bounded_pool_and_yield_in_order(monkeypatch: Any) -> None:
    sizes = {0: 3, 1: 1, 2: 5, 3: 2}  # pages per window
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    order: list[tuple[int, int]] = []

    def fake(self: PortOneClient, path: str, endpoint: str, base: Any, page: int) -> RawPage:
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

    monkeypatch.setattr(PortOneClient, "_fetch_page", fake)
    with PortOneClient(imp_key="k", imp_secret="s", concurrency=3) as client:
        bases = [(("from", str(w)), ("to", str(w + 1))) for w in sizes]
        got = [
            (int(dict(p.params)["from"]), p.page)
            for p in client._window_pages("/x", "/x", bases, concurrent=True)
        ]
    assert got == [(w, p) for w, n in sizes.items() for p in range(1, n + 1)]
    assert sorted(order) == sorted(got)  # every page fetched exactly once
    assert state["max"] <= 3
    # Page 1 of every window went out before window 0 was finished (not one window after another).
    assert order.index((3, 1)) < order.index((0, 3))
