"""How the sync knows a billing key is deleted: single-key GETs where they decide something, a sample
of the rest, and every key proven when the multi-lookup is caught leaving out a live key."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portone_recon._time import KST
from portone_recon.api.models import MultiResult
from portone_recon.sandbox.variants import ApiVariant
from portone_recon.sandbox.world import SandboxWorld
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync._keys import PROOF_SAMPLE, prove, sample
from portone_recon.sync._spool import Spool

from ._world import build_world, store_tables, unix, world_tables

SINGLE = "/subscribe/customers/{customer_uid}"
CHURNED = 40


def _churn(w: SandboxWorld, n: int = CHURNED) -> list[str]:
    """``n`` one-time customers whose keys are deleted after their payment."""
    out = []
    for i in range(n):
        cu = f"gone_{i:03d}"
        w.issue_billing_key(cu)
        w.pay_again(customer_uid=cu, merchant_uid=f"once_{cu}", amount=5000, name="단건")
        w.delete_billing_key(cu)
        out.append(cu)
    return out


def _orphan(w: SandboxWorld) -> str:
    """A customer whose key is deleted while a charge is still booked on it."""
    cu = "orphaned"
    w.issue_billing_key(cu)
    at = unix(w.clock.now + timedelta(days=20))
    w.create_schedules(cu, [{"merchant_uid": "orphan_sched", "schedule_at": at, "amount": 8900}])
    w.delete_billing_key(cu)
    return cu


def _singles(w: SandboxWorld, since: int) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in w.requests[since:] if r.get("route") == SINGLE]


def _proofs(store: Store) -> dict[str, str | None]:
    df = store.query("SELECT customer_uid, deleted_proof FROM billing_keys WHERE deleted")
    return dict(zip(df["customer_uid"], df["deleted_proof"], strict=True))


def _detail(store: Store) -> dict[str, Any]:
    import orjson

    df = store.query("SELECT detail FROM sync_state WHERE stream = 'billing_keys'")
    return dict(orjson.loads(df.iloc[0, 0]))


def test_left_out_keys_are_proven_where_it_decides_and_sampled_elsewhere(tmp_path: Path) -> None:
    w = build_world()
    churned = _churn(w)
    orphan = _orphan(w)
    w.advance(seconds=3600)
    store = Store(tmp_path / "s.duckdb")
    store.migrate()
    subscribed = churned[-1]  # the merchant's file says this one still subscribes
    with store.transaction() as con:
        con.execute(
            "INSERT INTO subscriptions (subscription_id, customer_uid, status, amount, anchor_day, source, "
            "loaded_at) VALUES ('sub_x', ?, 'active', 5000, 5, 'test', now())",
            [subscribed],
        )
    with w.client() as client:
        mark = len(w.requests)
        report = sync(client, store, progress=False)
        probed = _singles(w, mark)
        # a charge is booked on the orphan's key (its deletion decides a revoke) and the merchant says the
        # subscriber is active (a deleted key stops renewals): each has its own GET
        assert orphan in probed and subscribed in probed
        # the others left out (39 churned + cust_003, deleted in build_world) are sampled, not each probed
        assert len(probed) == 2 + PROOF_SAMPLE
        assert store_tables(store)["keys"] == world_tables(w)["keys"]
        proofs = _proofs(store)
        assert proofs[orphan] == proofs[subscribed] == "single_get"
        on_word = sorted(c for c, p in proofs.items() if p == "lookup")
        assert len(on_word) == len(churned) - PROOF_SAMPLE
        assert set(on_word) <= {*churned, "cust_003"}
        keys = next(s for s in report.streams if s.stream == "billing_keys")
        assert f"{len(on_word)} on the multi-lookup's word" in keys.note
        assert _detail(store)["lookup_omits_live"] is False

        # the next full pass draws again among the deletions taken on the lookup's word
        w.advance(seconds=86400)
        mark = len(w.requests)
        sync(client, store, progress=False, full=True)
        assert sorted(_singles(w, mark)) == on_word  # fewer than the sample: each gets its GET
        assert set(_proofs(store).values()) == {"single_get"}
        assert store_tables(store)["keys"] == world_tables(w)["keys"]


def test_a_lookup_that_leaves_out_live_keys_makes_every_deletion_proven(tmp_path: Path) -> None:
    w = build_world(variant=ApiVariant(lookup_leaves_out="super"))
    supers = []
    for i in range(8):  # live super billing keys the multi-lookup does not return
        cu = f"super_{i}"
        w.issue_billing_key(cu, channel_group_id="grp_smart")
        w.pay_again(customer_uid=cu, merchant_uid=f"sp_{cu}", amount=9900, name="구독")
        supers.append(cu)
    churned = _churn(w)
    w.advance(seconds=3600)
    store = Store(tmp_path / "s.duckdb")
    with w.client() as client:
        mark = len(w.requests)
        sync(client, store, progress=False)
        # the sample found a live key the lookup had left out: every left-out key got its own GET
        assert set(_singles(w, mark)) == {*supers, *churned, "cust_003"}
        assert store_tables(store)["keys"] == world_tables(w)["keys"]
        live = store.query(
            "SELECT count(*) AS n FROM billing_keys WHERE customer_uid LIKE 'super_%' AND NOT deleted"
        )
        assert live["n"][0] == len(supers)
        assert set(_proofs(store).values()) == {"single_get"}
        assert _detail(store)["lookup_omits_live"] is True

        # remembered: a later deletion with nothing booked on it is proven by its own GET, not sampled
        w.delete_billing_key("cust_005")
        w.unschedule(customer_uid="cust_005")
        w.advance(seconds=86400)
        mark = len(w.requests)
        sync(client, store, progress=False, full=True)
        assert "cust_005" in _singles(w, mark)
        assert _proofs(store)["cust_005"] == "single_get"
        assert store_tables(store)["keys"] == world_tables(w)["keys"]


class _Probe:
    """A client whose single-key GETs find ``live`` and answer 404 for the rest."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.asked: list[list[str]] = []

    def probe_billing_keys(self, ids: list[str]) -> MultiResult[dict[str, Any]]:
        self.asked.append(list(ids))
        return MultiResult(
            found=[{"customer_uid": c} for c in ids if c in self.live],
            missing=[c for c in ids if c not in self.live],
        )


def test_a_live_key_found_among_the_must_proofs_also_proves_the_rest(tmp_path: Path) -> None:
    rest = [f"r{i:03d}" for i in range(100)]
    client = _Probe(live={"booked"})
    spool = Spool(tmp_path, "k")
    out = prove(client, spool, ([], ["booked"], rest), omits_live=False, seed="2026-12-05")  # type: ignore[arg-type]
    assert out.omits_live and out.by_lookup == [] and sorted(out.proven) == rest
    assert sum(len(a) for a in client.asked) == 1 + len(rest)
    assert spool.items == 1  # the live key is stored like any other

    quiet = _Probe(live=set())
    out = prove(quiet, Spool(tmp_path, "q"), (["known"], [], rest), omits_live=False, seed="2026-12-05")  # type: ignore[arg-type]
    assert not out.omits_live and len(out.by_lookup) == len(rest) - PROOF_SAMPLE
    assert sorted([*out.proven]) == sorted(["known", *sample(rest, PROOF_SAMPLE, "2026-12-05")])


def test_the_sample_is_drawn_afresh_each_day() -> None:
    ids = [f"c{i}" for i in range(200)]
    a, b = sample(ids, 30, "2026-12-05"), sample(ids, 30, "2026-12-06")
    assert a == sample(ids, 30, "2026-12-05") and len(set(a)) == 30
    assert set(a) != set(b)


@pytest.mark.parametrize("full", [False, True])
def test_a_key_the_v2_sync_stored_is_left_alone_by_the_v1_lookups(tmp_path: Path, full: bool) -> None:
    w = build_world()
    store = Store(tmp_path / "s.duckdb")
    with w.client() as client:
        sync(client, store, progress=False)
        # cust_003's V1 key is gone, but the customer now holds a V2 key; cust_001's row is a V2 key too
        with store.transaction() as con:
            con.execute(
                "UPDATE billing_keys SET source_api = 'v2', deleted = false, deleted_proof = NULL, "
                "deleted_seen_at = NULL, card_name = 'V2 카드' WHERE customer_uid IN ('cust_003', 'cust_001')"
            )
        w.advance(to=datetime(2025, 5, 22, 9, 0, tzinfo=KST))
        w.delete_billing_key("cust_001")  # its V1 key
        mark = len(w.requests)
        sync(client, store, progress=False, full=full)
        asked = [q[1] for r in w.requests[mark:] for q in r.get("query", []) if q[0] == "customer_uid[]"]
    rows = store.query(
        "SELECT customer_uid, deleted, card_name FROM billing_keys "
        "WHERE customer_uid IN ('cust_001', 'cust_003')"
    )
    assert not rows["deleted"].any()
    assert set(rows["card_name"]) == {"V2 카드"}
    assert "cust_001" not in asked and "cust_003" not in asked


def test_a_failing_key_lookup_fails_only_its_stream_and_a_rerun_converges(tmp_path: Path) -> None:
    from portone_recon.errors import APIError

    w = build_world()
    _churn(w, 5)
    w.advance(seconds=3600)
    w.faults.fail_rate(500, 1.0, route="GET /subscribe/customers")  # the multi-lookup, every time
    store = Store(tmp_path / "s.duckdb")
    with w.client(max_retries=1) as client:
        with pytest.raises(APIError):
            sync(client, store, progress=False)
        # the lookups ran beside the listings: the listings' streams are committed, the keys' is not
        tables, want = store_tables(store), world_tables(w)
        assert tables["payments"] == want["payments"] and tables["schedules"] == want["schedules"]
        assert tables["keys"] == {}
        state = store.query("SELECT cursor, last_error FROM sync_state WHERE stream = 'billing_keys'")
        assert state["cursor"].isna().all() and "500" in str(state["last_error"].iloc[0])
        w.faults.clear()
        sync(client, store, progress=False)
    assert store_tables(store) == world_tables(w)
