"""Same seed, same calls -> the same world; a different seed differs."""

from __future__ import annotations

from sandbox_test_helpers import START, schedule_entry

from portone_recon.sandbox import CardBehaviour, SandboxWorld

DAY = 86400


def run(seed: int) -> dict:
    w = SandboxWorld(start=START, seed=seed, webhook_loss_rate=0.2, webhook_sink=lambda h: None)
    for i in range(30):
        w.issue_billing_key(f"cus_{i:03d}", behaviour=CardBehaviour.rate(0.3), customer_name="이영희")
        w.create_schedules(
            f"cus_{i:03d}", [schedule_entry(f"s-{i:03d}-{m}", w.now + (m * 30 + 1) * DAY) for m in range(3)]
        )
    w.advance(seconds=100 * DAY)
    for i in range(0, 30, 3):
        mu = f"s-{i:03d}-0"
        if w.schedules[mu]["payment_status"] == "paid":
            w.cancel_payment(merchant_uid=mu, amount=1000, from_console=True)
    return w.snapshot()


def test_same_seed_same_snapshot() -> None:
    a, b = run(11), run(11)
    assert a == b
    assert len(a["payments"]) == 90
    assert any(p["status"] == "failed" for p in a["payments"].values())
    assert any(h["dropped"] for h in a["outbox"])


def test_different_seed_differs() -> None:
    a, c = run(11), run(12)
    fails_a = sorted(mu for mu, s in a["schedules"].items() if s["payment_status"] == "failed")
    fails_c = sorted(mu for mu, s in c["schedules"].items() if s["payment_status"] == "failed")
    assert fails_a != fails_c
    assert a != c


def test_snapshot_is_json_and_has_no_token() -> None:
    w = SandboxWorld(start=START, seed=1)
    tok = w.issue_token(w.imp_key, w.imp_secret)["access_token"]
    import orjson

    text = orjson.dumps(w.snapshot()).decode()
    assert tok not in text
    assert w.imp_secret not in repr(w)
