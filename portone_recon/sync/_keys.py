"""The sync's billing-key lookups: run beside the listings, and how a deletion is known.

Lookups. ``GET /subscribe/customers?customer_uid[]=`` (100 ids per call) is the only way to read V1
billing keys, so a full billing-key pass (first run, ``full``, every ``full_every``) costs one call per
100 customers. :class:`KeyLookups` sends them on a thread of its own, fed with customer ids as the run
learns them: the store's customers at the start, then each staged part of the payment and schedule
listings (:meth:`KeyLookups.feed`). The lookups go through the client's pool of ``concurrency``
requests, so they take the slots the listings leave idle (a large merchant's listing is bound by
parsing and staging, not by the network) without putting more requests in flight, and as background
work they never delay a listing's request. At the billing-key
stream's turn, whoever the store names that was not looked up yet is looked up
(:meth:`KeyLookups.finish`); the stream then merges what was found in one transaction, as before. Which
keys are looked up and what is stored does not depend on the overlap: only when the calls are made.

Deletions. A key the multi-lookup leaves out is gone unless the lookup can leave out a live key, which
no source rules out (PortOne documents its 207 as "not found or not accessible", and a super billing key
has another shape). Its own ``GET /subscribe/customers/{customer_uid}`` settles it, one call per key; a
merchant's churned customers are thousands of keys (2,139 of a 1e6-payment merchant's 5,031 calls). So a
left-out key gets its own GET when the answer decides something (:func:`proof_plan`):

- its key is stored live: a deletion since the last look, the event a daily run exists to catch;
- a charge is booked on it after now: an orphan schedule, which a fix-up may revoke;
- the merchant's subscriptions file holds an active or trialing subscription of the customer: a deleted
  key stops its renewals;

and of the others, ``PROOF_SAMPLE`` drawn afresh each run get their own GET. If every GET answers 404,
the rest are stored deleted with ``deleted_proof = 'lookup'``. If any GET finds a live key the lookup
left out, the lookup is known to leave out live keys at this merchant: every left-out key gets its own
GET, in this run and every later one (``lookup_omits_live`` in the stream's ``sync_state.detail``).
Deletions stored on the lookup's word are candidates again at every full pass, so a rare omission is
found within a few passes. No fix-up acts on either kind: it reads the key with its own GET right before
it sends.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from portone_recon.api.models import MultiResult
from portone_recon.sync._spool import Spool

#: Left-out keys proven by their own GET each run beyond those whose proof decides something.
PROOF_SAMPLE = 30
#: Ids handed to the client at a time by the lookup thread (10 calls): small enough that a stop or an
#: error is seen within about a second, large enough to keep the client's pool busy.
BATCH = 1_000
LOOKUP_ENDPOINT = "/subscribe/customers"
SINGLE_ENDPOINT = "/subscribe/customers/{customer_uid}"


class KeyClient(Protocol):
    """What the lookups need of :class:`~portone_recon.api.client.PortOneClient`."""

    def fetch_billing_key_items(self, customer_uids: Sequence[str]) -> MultiResult[dict[str, Any]]: ...

    def probe_billing_keys(self, customer_uids: Sequence[str]) -> MultiResult[dict[str, Any]]: ...

    def counting_calls(self) -> AbstractContextManager[Any]: ...

    def background(self) -> AbstractContextManager[None]: ...


class KeyLookups:
    """Billing-key multi-lookups on their own thread, fed with customer ids as the run learns them.

    ``con`` is the run's scratch connection (main thread only): the ids already asked for are kept in its
    TEMP table ``_keys_asked``, so a customer is looked up once however often it appears. Found keys go
    to :attr:`spool` as received; the ids the lookups left out are collected for :func:`proof_plan`.
    """

    def __init__(self, client: KeyClient, con: duckdb.DuckDBPyConnection, folder: Path, *, chunk_items: int):
        self._client = client
        self._con = con
        self.spool = Spool(folder, "billing_keys", chunk_items=chunk_items)
        self._queue: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._missing: list[str] = []
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self.calls = 0
        con.execute("CREATE OR REPLACE TEMP TABLE _keys_asked (customer_uid VARCHAR)")
        self._thread = threading.Thread(target=self._work, name="portone-recon-sync-keys", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        with self._client.background(), self._client.counting_calls() as counter:
            try:
                while (ids := self._queue.get()) is not None:
                    if self._stop.is_set() or self._error is not None:
                        continue  # drain: nothing more is sent after a stop or a failure
                    result = self._client.fetch_billing_key_items(ids)
                    self.spool.add_items(LOOKUP_ENDPOINT, list(result.found))
                    self._missing.extend(result.missing)
            except BaseException as exc:  # raised by finish(), on the stream's turn
                self._error = exc
            finally:
                self.calls = counter.calls

    def feed(self, table: str) -> int:
        """Queue the customers of staged table ``table`` (its ``customer_uid``) not asked for yet."""
        rows = self._con.execute(
            f"SELECT DISTINCT customer_uid FROM {table} WHERE customer_uid IS NOT NULL "
            "AND customer_uid <> '' AND customer_uid NOT IN (SELECT customer_uid FROM _keys_asked) "
            "ORDER BY 1"
        ).fetchall()
        return self.ask([str(r[0]) for r in rows], known_new=True)

    def ask(self, customer_uids: Sequence[str], *, known_new: bool = False) -> int:
        """Queue ``customer_uids`` that were not asked for yet; returns how many were queued."""
        ids = list(dict.fromkeys(customer_uids))
        if not known_new and ids:
            rows = self._con.execute(
                "SELECT c FROM (SELECT unnest($ids::VARCHAR[]) AS c) "
                "WHERE c NOT IN (SELECT customer_uid FROM _keys_asked) ORDER BY 1",
                {"ids": ids},
            ).fetchall()
            ids = [str(r[0]) for r in rows]
        if not ids:
            return 0
        self._con.execute("INSERT INTO _keys_asked SELECT unnest($ids::VARCHAR[])", {"ids": ids})
        for start in range(0, len(ids), BATCH):
            self._queue.put(ids[start : start + BATCH])
        return len(ids)

    def skip(self, customer_uids: Sequence[str]) -> None:
        """Never look up ``customer_uids`` (their keys are another reader's: the V2 sync's)."""
        if customer_uids:
            self._con.execute(
                "INSERT INTO _keys_asked SELECT unnest($ids::VARCHAR[])", {"ids": list(customer_uids)}
            )

    def finish(self, wanted: Sequence[str]) -> list[str]:
        """Look up what of ``wanted`` was not asked for yet, wait for every lookup, and return the ids
        of ``wanted`` that the lookups left out (in ``wanted``'s order).

        Raises the first error of a lookup (the billing-key stream fails; nothing of it is stored).
        """
        self.ask(wanted)
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        left_out = set(self._missing)
        return [c for c in wanted if c in left_out]

    def close(self) -> None:
        """Stop the thread (what it is sending finishes; nothing more is sent) and drop the spool."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join()
        self.spool.remove()


@dataclass(frozen=True)
class Deletions:
    """What the proofs of a billing-key pass concluded about the keys the lookups left out."""

    proven: list[str]
    """Gone by their own GET's 404 (or stored so already)."""
    by_lookup: list[str]
    """Gone on the lookup's word: not probed, after every probe of this run answered 404."""
    probed: int
    omits_live: bool
    """The lookup left out a key its own GET found (this run or before)."""

    @property
    def gone(self) -> list[str]:
        return [*self.proven, *self.by_lookup]


def proof_plan(
    con: duckdb.DuckDBPyConnection, candidates: Sequence[str], now: datetime
) -> tuple[list[str], list[str], list[str]]:
    """Split left-out ``candidates`` into (already proven, must be proven, may be sampled).

    Already proven: stored deleted by a 404 of their own GET (or by their own record), nothing would
    change. Must be proven: stored live, with a charge booked after ``now``, or with a subscription the
    merchant says is active or trialing. The store is attached.
    """
    if not candidates:
        return [], [], []
    rows = con.execute(
        "WITH c AS (SELECT DISTINCT unnest($ids::VARCHAR[]) AS customer_uid), "
        "booked AS (SELECT customer_uid FROM schedules WHERE schedule_status = 'scheduled' "
        "AND schedule_at > $now UNION SELECT customer_uid FROM subscriptions "
        "WHERE status IN ('active', 'trialing')) "
        "SELECT c.customer_uid, "
        "coalesce(b.deleted AND coalesce(b.deleted_proof, '') <> 'lookup', false) AS proven, "
        "(b.customer_uid IS NOT NULL AND NOT b.deleted) OR k.customer_uid IS NOT NULL AS must "
        "FROM c LEFT JOIN billing_keys b USING (customer_uid) "
        "LEFT JOIN (SELECT DISTINCT customer_uid FROM booked) k USING (customer_uid)",
        {"ids": list(candidates), "now": now},
    ).fetchall()
    state = {str(c): (bool(p), bool(m)) for c, p, m in rows}
    proven = [c for c in candidates if state[c][0]]
    must = [c for c in candidates if not state[c][0] and state[c][1]]
    rest = [c for c in candidates if not state[c][0] and not state[c][1]]
    return proven, must, rest


def sample(ids: Sequence[str], k: int, seed: str) -> list[str]:
    """``k`` of ``ids``, the same for the same ``seed`` and a different draw for another seed."""

    def rank(c: str) -> bytes:
        return hashlib.sha256(f"{seed}\x00{c}".encode()).digest()

    return sorted(ids, key=rank)[:k]


def prove(
    client: KeyClient,
    spool: Spool,
    plan: tuple[list[str], list[str], list[str]],
    *,
    omits_live: bool,
    seed: str,
) -> Deletions:
    """Send the single-key GETs ``plan`` calls for (see the module docstring) and conclude.

    A key a GET finds is added to ``spool`` (stored like any other) and shows that the lookup leaves out
    live keys: then every left-out key is proven by its own GET.
    """
    known, must, rest = plan
    drawn = rest if omits_live else sample(rest, PROOF_SAMPLE, seed)
    asked = [*must, *drawn]
    result = client.probe_billing_keys(asked) if asked else MultiResult(found=[], missing=[])
    found, gone = list(result.found), set(result.missing)
    if found:
        omits_live = True
        drawn_set = set(drawn)
        others = [c for c in rest if c not in drawn_set]
        if others:
            more = client.probe_billing_keys(others)
            found += more.found
            gone |= set(more.missing)
            asked += others
        spool.add_items(SINGLE_ENDPOINT, found)
    probed = set(asked)
    return Deletions(
        proven=[*known, *(c for c in [*must, *rest] if c in gone)],
        by_lookup=[c for c in rest if c not in probed],
        probed=len(asked),
        omits_live=omits_live,
    )
