"""The V1 HTTP surface with plain httpx: envelope, statuses, codes, messages, paging, windows, tokens."""

from __future__ import annotations

import httpx
import pytest
from sandbox_test_helpers import BASE, authed, schedule_entry

from portone_recon.sandbox import CardBehaviour, SandboxWorld

DAY = 86400


def body(r: httpx.Response) -> dict:
    return r.json()


def seed_paid(world: SandboxWorld, n: int, *, customer: str = "cus_a", step: int = 60) -> list[str]:
    if customer not in world.billing_keys:
        world.issue_billing_key(customer, customer_name="홍길동")
    ids = []
    for i in range(n):
        p = world.pay_again(
            customer_uid=customer, merchant_uid=f"{customer}-o{i}", amount=1000 + i, name="상품"
        )
        ids.append(p["imp_uid"])
        world.advance(seconds=step)
    return ids


# ---------------------------------------------------------------- tokens
def test_token_same_while_valid_extended_in_last_minute_new_after_expiry(world: SandboxWorld) -> None:
    c = httpx.Client(transport=world.transport(), base_url=BASE)
    creds = {"imp_key": world.imp_key, "imp_secret": world.imp_secret}
    first = body(c.post("/users/getToken", json=creds))
    assert first["code"] == 0
    assert first["message"] is None
    tok = first["response"]
    assert tok["expired_at"] - tok["now"] == 1800
    world.advance(seconds=600)
    again = body(c.post("/users/getToken", json=creds))["response"]
    assert again["access_token"] == tok["access_token"]
    assert again["expired_at"] == tok["expired_at"]
    world.advance(seconds=1800 - 600 - 30)  # 30 s left
    extended = body(c.post("/users/getToken", json=creds))["response"]
    assert extended["access_token"] == tok["access_token"]
    assert extended["expired_at"] == tok["expired_at"] + 300
    world.advance(seconds=30 + 300)  # exactly at the extended expiry
    r = c.get("/payments/imp_000000000000", headers={"Authorization": tok["access_token"]})
    assert r.status_code == 401
    assert body(r) == {"code": -1, "message": "Unauthorized", "response": None}
    fresh = body(c.post("/users/getToken", json=creds))["response"]
    assert fresh["access_token"] != tok["access_token"]
    assert fresh["expired_at"] == world.now + 1800


def test_bearer_and_bare_tokens_accepted_missing_and_wrong_refused(world: SandboxWorld) -> None:
    for bearer in (True, False):
        c = authed(world, bearer=bearer)
        assert c.get("/payments/imp_000000000000").status_code == 404  # authenticated, then not found
    c = httpx.Client(transport=world.transport(), base_url=BASE)
    assert c.get("/payments/imp_000000000000").status_code == 401
    assert c.get("/payments/imp_000000000000", headers={"Authorization": "Bearer nope"}).status_code == 401
    bad = c.post("/users/getToken", json={"imp_key": world.imp_key, "imp_secret": "wrong"})
    assert bad.status_code == 401
    assert body(bad)["response"] is None


def test_get_token_accepts_form_body(world: SandboxWorld) -> None:
    c = httpx.Client(transport=world.transport(), base_url=BASE)
    r = c.post("/users/getToken", data={"imp_key": world.imp_key, "imp_secret": world.imp_secret})
    assert r.status_code == 200
    assert len(body(r)["response"]["access_token"]) == 40


# ---------------------------------------------------------------- payments
def test_single_payment_and_404_message(world: SandboxWorld, http: httpx.Client) -> None:
    (imp,) = seed_paid(world, 1)
    p = body(http.get(f"/payments/{imp}"))["response"]
    assert p["imp_uid"] == imp
    assert p["status"] == "paid"
    assert p["channel"] == "api"
    assert p["pay_method"] == "card"
    assert p["customer_uid_usage"] == "payment"
    assert p["failed_at"] == 0
    assert p["cancelled_at"] == 0
    assert p["cancel_history"] == []
    assert p["card_number"].count("*") == 9
    assert p["buyer_name"] == "홍길동"
    r = http.get("/payments/imp_999999999999")
    assert r.status_code == 404
    assert body(r) == {"code": -1, "message": "존재하지 않는 결제정보입니다.", "response": None}


def test_multi_lookup_200_207_404_and_limit(world: SandboxWorld, http: httpx.Client) -> None:
    ids = seed_paid(world, 3)
    r = http.get("/payments", params={"imp_uid[]": ids})
    assert r.status_code == 200
    assert [p["imp_uid"] for p in body(r)["response"]] == ids
    r = http.get(
        "/payments", params={"imp_uid[]": [ids[0], "imp_000000000001"], "merchant_uid[]": ["cus_a-o2"]}
    )
    assert r.status_code == 207
    assert {p["imp_uid"] for p in body(r)["response"]} == {ids[0], ids[2]}
    r = http.get("/payments", params={"imp_uid[]": ["imp_000000000001"]})
    assert r.status_code == 404
    assert body(r)["code"] == -1
    r = http.get("/payments", params={"imp_uid[]": [f"imp_{i:012d}" for i in range(101)]})
    assert r.status_code == 400


def test_find_and_find_all_follow_sorting_and_status(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_b", behaviour=CardBehaviour.decline_nth(1))
    world.create_schedules("cus_b", [schedule_entry("ord-1", world.now + 60)])
    world.advance(seconds=120)  # attempt 1 fails
    world.retry_schedule("ord-1")  # attempt 2 paid
    found = body(http.get("/payments/find/ord-1"))["response"]
    assert found["status"] == "paid"  # newest started first
    oldest = body(http.get("/payments/find/ord-1", params={"sorting": "started"}))["response"]
    assert oldest["status"] == "failed"
    assert body(http.get("/payments/find/ord-1/failed"))["response"]["imp_uid"] == oldest["imp_uid"]
    assert http.get("/payments/find/ord-1/cancelled").status_code == 404
    assert http.get("/payments/find/nope").status_code == 404
    page = body(http.get("/payments/findAll/ord-1"))["response"]
    assert page["total"] == 2
    assert page["previous"] == 0
    assert page["next"] == 0
    assert [p["status"] for p in page["list"]] == ["paid", "failed"]
    page1 = body(http.get("/payments/findAll/ord-1", params={"limit": 1}))["response"]
    assert (page1["total"], page1["next"], len(page1["list"])) == (2, 2, 1)
    only_failed = body(http.get("/payments/findAll/ord-1/failed"))["response"]
    assert only_failed["total"] == 1
    assert http.get("/payments/findAll/ord-1/bogus").status_code == 400
    assert http.get("/payments/findAll/nope").status_code == 404


def test_status_listing_pages_from_1_and_limits(world: SandboxWorld, http: httpx.Client) -> None:
    ids = seed_paid(world, 45)
    r1 = body(http.get("/payments/status/paid"))["response"]
    assert r1["total"] == 45
    assert len(r1["list"]) == 20  # default limit
    assert (r1["previous"], r1["next"]) == (0, 2)
    assert r1["list"][0]["imp_uid"] == ids[-1]  # -started: newest first
    r3 = body(http.get("/payments/status/paid", params={"page": 3}))["response"]
    assert (r3["previous"], r3["next"], len(r3["list"])) == (2, 0, 5)
    asc = body(http.get("/payments/status/paid", params={"limit": 1000, "sorting": "paid"}))["response"]
    assert [p["imp_uid"] for p in asc["list"]] == ids
    assert http.get("/payments/status/paid", params={"limit": 1001}).status_code == 400
    assert http.get("/payments/status/paid", params={"limit": 0}).status_code == 400
    assert http.get("/payments/status/paid", params={"page": 0}).status_code == 400
    assert http.get("/payments/status/paid", params={"page": 4}).status_code == 400
    assert http.get("/payments/status/unknown").status_code == 400
    assert http.get("/payments/status/paid", params={"sorting": "amount"}).status_code == 400


def test_status_window_is_inclusive_and_at_most_90_days(world: SandboxWorld, http: httpx.Client) -> None:
    ids = seed_paid(world, 3, step=100)
    paid_at = [world.payments[i]["paid_at"] for i in ids]
    r = body(http.get("/payments/status/paid", params={"from": paid_at[0], "to": paid_at[1]}))["response"]
    assert {p["imp_uid"] for p in r["list"]} == set(ids[:2])
    to = world.now
    ok = http.get("/payments/status/paid", params={"from": to - 90 * DAY, "to": to})
    assert ok.status_code == 200
    too_long = http.get("/payments/status/paid", params={"from": to - 90 * DAY - 1, "to": to})
    assert too_long.status_code == 400
    assert body(too_long)["code"] == -1
    assert http.get("/payments/status/paid", params={"from": to, "to": to - 1}).status_code == 400
    # default window: the last 90 days only
    world.advance(seconds=91 * DAY)
    assert body(http.get("/payments/status/paid"))["response"]["total"] == 0


def test_status_uses_each_status_time_axis(world: SandboxWorld, http: httpx.Client) -> None:
    (imp,) = seed_paid(world, 1)
    paid_at = world.payments[imp]["paid_at"]
    world.advance(seconds=3 * DAY)
    http.post("/payments/cancel", json={"imp_uid": imp, "reason": "고객 요청"})
    cancelled_at = world.payments[imp]["cancelled_at"]
    assert cancelled_at == paid_at + 3 * DAY + 60
    in_paid = body(http.get("/payments/status/paid", params={"from": paid_at, "to": paid_at}))["response"]
    assert in_paid["total"] == 0  # no longer paid
    on_day = {"from": cancelled_at, "to": cancelled_at}
    assert body(http.get("/payments/status/cancelled", params=on_day))["response"]["total"] == 1
    assert body(http.get("/payments/status/all", params=on_day))["response"]["total"] == 1
    at_paid = {"from": paid_at, "to": paid_at}
    assert body(http.get("/payments/status/all", params=at_paid))["response"]["total"] == 0
    world.issue_billing_key("cus_f", behaviour=CardBehaviour.decline())
    f = world.pay_again(customer_uid="cus_f", merchant_uid="f-1", amount=500, name="x")
    on_fail = {"from": f["failed_at"], "to": f["failed_at"]}
    assert [
        p["imp_uid"] for p in body(http.get("/payments/status/failed", params=on_fail))["response"]["list"]
    ] == [f["imp_uid"]]


def test_cancel_partial_then_full_then_refused(world: SandboxWorld, http: httpx.Client) -> None:
    (imp,) = seed_paid(world, 1)  # amount 1000
    part = body(http.post("/payments/cancel", json={"imp_uid": imp, "amount": 300, "reason": "부분환불"}))
    assert part["code"] == 0
    p = part["response"]
    assert (p["status"], p["cancel_amount"], p["cancelled_at"]) == ("paid", 300, 0)
    (rec,) = p["cancel_history"]
    assert rec["amount"] == 300
    assert rec["reason"] == "부분환불"
    assert rec["cancellation_id"]
    assert rec["pg_tid"]
    assert rec["receipt_url"].startswith("https://")
    too_much = body(http.post("/payments/cancel", json={"imp_uid": imp, "amount": 701}))
    assert too_much["code"] == 1
    assert too_much["response"] is None
    wrong_checksum = body(
        http.post("/payments/cancel", json={"imp_uid": imp, "amount": 100, "checksum": 1000})
    )
    assert wrong_checksum["code"] == 1
    full = body(http.post("/payments/cancel", json={"merchant_uid": "cus_a-o0", "checksum": 700}))["response"]
    assert (full["status"], full["cancel_amount"], len(full["cancel_history"])) == ("cancelled", 1000, 2)
    assert full["cancelled_at"] == world.now
    again = http.post("/payments/cancel", json={"imp_uid": imp})
    assert again.status_code == 200
    assert body(again) == {"code": 1, "message": "이미 전액취소된 주문입니다.", "response": None}
    none = body(http.post("/payments/cancel", json={"imp_uid": "imp_000000000001"}))
    assert (none["code"], none["message"]) == (1, "취소할 결제건이 존재하지 않습니다.")
    assert http.post("/payments/cancel", json={}).status_code == 400


# ---------------------------------------------------------------- billing keys
def test_billing_key_issue_get_delete_and_multi(world: SandboxWorld, http: httpx.Client) -> None:
    card = {
        "card_number": "4242-4242-4242-4242",
        "expiry": "2030-12",
        "birth": "900101",
        "customer_name": "김철수",
    }
    issued = body(http.post("/subscribe/customers/cus_k1", json=card))["response"]
    assert issued["customer_uid"] == "cus_k1"
    assert issued["pg_provider"] == "nice_v2"
    assert issued["card_name"] in {"신한카드", "국민카드", "삼성카드", "현대카드"}
    assert issued["card_number"].endswith("*********2")
    assert issued["inserted"] == world.now
    assert body(http.get("/subscribe/customers/cus_k1"))["response"]["customer_name"] == "김철수"
    http.post("/subscribe/customers/cus_k2", json=card)
    multi = http.get("/subscribe/customers", params={"customer_uid[]": ["cus_k1", "cus_k2"]})
    assert multi.status_code == 200
    assert len(body(multi)["response"]) == 2
    partial = http.get("/subscribe/customers", params={"customer_uid[]": ["cus_k1", "cus_zz"]})
    assert partial.status_code == 207
    assert [k["customer_uid"] for k in body(partial)["response"]] == ["cus_k1"]
    deleted = http.delete("/subscribe/customers/cus_k1", params={"reason": "해지"})
    assert body(deleted)["response"]["customer_uid"] == "cus_k1"
    missing = http.get("/subscribe/customers/cus_k1")
    assert missing.status_code == 404
    assert body(missing)["message"] == "요청하신 customer_uid(cus_k1)로 등록된 정보를 찾을 수 없습니다."
    assert http.delete("/subscribe/customers/cus_k1").status_code == 404
    assert http.get("/subscribe/customers", params={"customer_uid[]": ["cus_k1"]}).status_code == 404


def test_billing_key_issuance_failure_is_code_minus_1(http: httpx.Client) -> None:
    for card in (
        {"card_number": "4000-0000-0000-0127", "expiry": "2030-12"},
        {"card_number": "1234", "expiry": "2030-12"},
        {"card_number": "4242-4242-4242-4242", "expiry": "2020-01"},
    ):
        r = http.post("/subscribe/customers/cus_bad", json=card)
        assert r.status_code == 200
        assert body(r)["code"] == -1
        assert body(r)["message"].startswith("카드정보 인증 및 빌키 발급에 실패하였습니다.")
    assert http.get("/subscribe/customers/cus_bad").status_code == 404


def test_customer_payments_paged_by_20(world: SandboxWorld, http: httpx.Client) -> None:
    ids = seed_paid(world, 25, customer="cus_p", step=10)
    p1 = body(http.get("/subscribe/customers/cus_p/payments"))["response"]
    assert (p1["total"], len(p1["list"]), p1["next"]) == (25, 20, 2)
    assert p1["list"][0]["imp_uid"] == ids[-1]
    p2 = body(http.get("/subscribe/customers/cus_p/payments", params={"page": 2}))["response"]
    assert (len(p2["list"]), p2["next"], p2["previous"]) == (5, 0, 1)
    assert http.get("/subscribe/customers/nobody/payments").status_code == 404


def test_again_paid_failed_unknown_and_duplicate(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_ok")
    world.issue_billing_key("cus_no", behaviour=CardBehaviour.decline("[F114] 잔액부족"))
    req = {"customer_uid": "cus_ok", "merchant_uid": "a-1", "amount": 9900, "name": "정기결제"}
    paid = body(http.post("/subscribe/payments/again", json=req))
    assert paid["code"] == 0
    assert paid["response"]["status"] == "paid"
    assert paid["response"]["customer_uid_usage"] == "payment"
    dup = body(http.post("/subscribe/payments/again", json=req))
    assert dup["code"] == 1
    failed = body(
        http.post("/subscribe/payments/again", json={**req, "customer_uid": "cus_no", "merchant_uid": "a-2"})
    )
    assert failed["code"] == 0  # code 0 only means the request reached the card company
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["fail_reason"] == "[F114] 잔액부족"
    assert failed["response"]["paid_at"] == 0
    unknown = body(
        http.post("/subscribe/payments/again", json={**req, "customer_uid": "ghost", "merchant_uid": "a-3"})
    )
    assert unknown == {"code": -1, "message": "등록되지 않은 구매자입니다.", "response": None}
    assert http.post("/subscribe/payments/again", json={"customer_uid": "cus_ok"}).status_code == 400


# ---------------------------------------------------------------- schedules
def test_schedule_create_duplicate_refuses_whole_batch(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_s")
    t = world.now + DAY
    created = body(
        http.post(
            "/subscribe/payments/schedule",
            json={
                "customer_uid": "cus_s",
                "schedules": [schedule_entry("s-1", t), schedule_entry("s-2", t + DAY)],
            },
        )
    )
    assert created["code"] == 0
    assert [s["merchant_uid"] for s in created["response"]] == ["s-1", "s-2"]
    first = created["response"][0]
    assert first["schedule_status"] == "scheduled"
    assert first["payment_status"] is None
    assert first["imp_uid"] is None
    assert (first["executed_at"], first["revoked_at"], first["schedule_at"]) == (0, 0, t)
    dup = body(
        http.post(
            "/subscribe/payments/schedule",
            json={"customer_uid": "cus_s", "schedules": [schedule_entry("s-3", t), schedule_entry("s-1", t)]},
        )
    )
    assert dup["code"] == 1
    assert dup["response"] is None
    assert "s-1" in dup["message"]
    assert "s-3" not in world.schedules  # all or nothing
    unknown = body(
        http.post(
            "/subscribe/payments/schedule",
            json={"customer_uid": "ghost", "schedules": [schedule_entry("g", t)]},
        )
    )
    assert unknown == {"code": 1, "message": "등록된 고객정보가 없습니다.", "response": None}
    past = http.post(
        "/subscribe/payments/schedule",
        json={"customer_uid": "cus_s", "schedules": [schedule_entry("p", world.now - 1)]},
    )
    assert past.status_code == 400


def test_schedule_with_card_data_issues_the_key(world: SandboxWorld, http: httpx.Client) -> None:
    r = body(
        http.post(
            "/subscribe/payments/schedule",
            json={
                "customer_uid": "cus_new",
                "card_number": "4242-4242-4242-4242",
                "expiry": "2030-12",
                "birth": "900101",
                "schedules": [schedule_entry("n-1", world.now + DAY)],
            },
        )
    )
    assert r["code"] == 0
    assert "cus_new" in world.billing_keys


def test_unschedule_by_key_and_by_merchant_uid(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_u")
    t = world.now + DAY
    world.create_schedules("cus_u", [schedule_entry(f"u-{i}", t + i) for i in range(3)])
    one = body(
        http.post("/subscribe/payments/unschedule", json={"customer_uid": "cus_u", "merchant_uid": ["u-0"]})
    )
    assert [s["merchant_uid"] for s in one["response"]] == ["u-0"]
    assert one["response"][0]["schedule_status"] == "revoked"
    assert one["response"][0]["revoked_at"] == world.now
    rest = body(http.post("/subscribe/payments/unschedule", json={"customer_uid": "cus_u"}))
    assert sorted(s["merchant_uid"] for s in rest["response"]) == ["u-1", "u-2"]
    none = body(http.post("/subscribe/payments/unschedule", json={"customer_uid": "cus_u"}))
    assert none == {"code": 1, "message": "취소할 예약결제 기록이 존재하지 않습니다.", "response": None}
    assert http.post("/subscribe/payments/unschedule", json={}).status_code == 400


def test_schedule_range_listing_window_and_paging(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_r")
    t0 = world.now + DAY
    world.create_schedules("cus_r", [schedule_entry(f"r-{i:02d}", t0 + i * DAY) for i in range(30)])
    world.unschedule(merchant_uids=["r-00"])
    q = {"schedule_from": t0, "schedule_to": t0 + 25 * DAY}  # to exclusive: r-00 .. r-24
    p1 = body(http.get("/subscribe/payments/schedule", params=q))["response"]
    assert (p1["total"], len(p1["list"]), p1["next"]) == (25, 20, 2)
    assert p1["list"][0]["merchant_uid"] == "r-24"  # newest first
    oldest = body(
        http.get("/subscribe/payments/schedule", params={**q, "sorting": "scheduled", "limit": 1000})
    )
    assert oldest["response"]["list"][0]["merchant_uid"] == "r-00"
    revoked = body(http.get("/subscribe/payments/schedule", params={**q, "schedule_status": "revoked"}))
    assert [s["merchant_uid"] for s in revoked["response"]["list"]] == ["r-00"]
    ok = http.get("/subscribe/payments/schedule", params={"schedule_from": t0, "schedule_to": t0 + 92 * DAY})
    assert ok.status_code == 200
    long = http.get(
        "/subscribe/payments/schedule", params={"schedule_from": t0, "schedule_to": t0 + 92 * DAY + 1}
    )
    assert long.status_code == 400
    assert http.get("/subscribe/payments/schedule", params={"schedule_from": t0}).status_code == 400
    assert (
        http.get("/subscribe/payments/schedule", params={**q, "schedule_status": "done"}).status_code == 400
    )


def test_customer_schedules_both_paths(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_c")
    world.issue_billing_key("cus_d")
    t0 = world.now + DAY
    world.create_schedules("cus_c", [schedule_entry(f"c-{i:02d}", t0 + i * DAY) for i in range(22)])
    world.create_schedules("cus_d", [schedule_entry("d-00", t0)])
    q = {"from": t0, "to": t0 + 30 * DAY}
    for path in ("/subscribe/payments/schedule/customers/cus_c", "/subscribe/customers/cus_c/schedules"):
        p1 = body(http.get(path, params=q))["response"]
        assert (p1["total"], len(p1["list"]), p1["next"]) == (22, 20, 2)
        assert {s["customer_uid"] for s in p1["list"]} == {"cus_c"}
        assert p1["list"][0]["merchant_uid"] == "c-21"
        st = body(http.get(path, params={**q, "schedule-status": "executed"}))["response"]
        assert st["total"] == 0
        assert http.get(path, params={"from": t0, "to": t0 + 93 * DAY}).status_code == 400
    assert http.get("/subscribe/payments/schedule/customers/ghost", params=q).status_code == 404


def test_schedule_get_put_reschedule_retry_rules(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_x", behaviour=CardBehaviour.decline_nth(1))
    t = world.now + DAY
    world.create_schedules("cus_x", [schedule_entry("x-1", t)])
    got = body(http.get("/subscribe/payments/schedule/x-1"))["response"]
    assert got["merchant_uid"] == "x-1"
    assert http.get("/subscribe/payments/schedule/nope").status_code == 404
    moved = body(http.put("/subscribe/payments/schedule/x-1", json={"schedule_at": t + 3600}))["response"]
    assert moved["schedule_at"] == t + 3600
    assert (
        http.put("/subscribe/payments/schedule/x-1", json={"schedule_at": world.now - 1}).status_code == 400
    )
    assert http.put("/subscribe/payments/schedule/x-1", json={}).status_code == 400
    assert http.post("/subscribe/payments/schedule/x-1/retry").status_code == 400  # not executed yet
    resched_early = http.post("/subscribe/payments/schedule/x-1/reschedule", json={"schedule_at": t + 7200})
    assert resched_early.status_code == 400
    world.advance(seconds=2 * DAY)  # executes at t+3600 and fails (1st charge)
    s = world.schedules["x-1"]
    assert (s["schedule_status"], s["payment_status"], s["executed_at"]) == ("executed", "failed", t + 3600)
    assert (
        http.put("/subscribe/payments/schedule/x-1", json={"schedule_at": world.now + 10}).status_code == 400
    )
    retried = body(http.post("/subscribe/payments/schedule/x-1/retry"))["response"]
    assert retried["status"] == "paid"
    assert retried["customer_uid_usage"] == "payment.scheduled"
    assert world.schedules["x-1"]["imp_uid"] == retried["imp_uid"]
    assert http.post("/subscribe/payments/schedule/x-1/retry").status_code == 400  # already paid
    assert (
        http.post(
            "/subscribe/payments/schedule/x-1/reschedule", json={"schedule_at": world.now + 60}
        ).status_code
        == 400
    )
    assert http.post("/subscribe/payments/schedule/nope/retry").status_code == 404


def test_reschedule_failed_schedule_runs_again(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_y", behaviour=CardBehaviour.decline_nth(1))
    world.create_schedules("cus_y", [schedule_entry("y-1", world.now + 60)])
    world.advance(seconds=120)
    new_at = world.now + DAY
    r = body(http.post("/subscribe/payments/schedule/y-1/reschedule", json={"schedule_at": new_at}))[
        "response"
    ]
    assert (r["schedule_status"], r["payment_status"], r["imp_uid"], r["schedule_at"]) == (
        "scheduled",
        None,
        None,
        new_at,
    )
    world.advance(seconds=DAY)
    assert world.schedules["y-1"]["payment_status"] == "paid"
    attempts = body(http.get("/payments/findAll/y-1"))["response"]
    assert [p["status"] for p in attempts["list"]] == ["paid", "failed"]


def test_unknown_route_and_wrong_method(http: httpx.Client) -> None:
    assert http.get("/nothing/here").status_code == 404
    r = http.delete("/payments/cancel")
    assert r.status_code in (404, 405)
    assert body(r)["code"] == -1


def test_request_log_counts_writes(world: SandboxWorld, http: httpx.Client) -> None:
    world.requests.clear()
    world.issue_billing_key("cus_l")
    http.post(
        "/subscribe/payments/again",
        json={"customer_uid": "cus_l", "merchant_uid": "l-1", "amount": 10, "name": "n"},
    )
    http.get("/payments/find/l-1")
    http.get("/payments", params={"merchant_uid[]": ["l-1"]})
    writes = [e for e in world.request_log if e["method"] != "GET"]
    assert [(e["method"], e["route"], e["status"]) for e in writes] == [
        ("POST", "/subscribe/payments/again", 200)
    ]
    assert world.requests[-1]["query"] == [("merchant_uid[]", "l-1")]
    assert len(world.requests) == 3


@pytest.mark.parametrize("amount", [0, -5, 10.5, "abc"])
def test_bad_amounts_are_400(world: SandboxWorld, http: httpx.Client, amount: object) -> None:
    world.issue_billing_key("cus_m")
    r = http.post(
        "/subscribe/payments/again", json={"customer_uid": "cus_m", "merchant_uid": "m-1", "amount": amount}
    )
    assert r.status_code == 400
    assert "amount" in body(r)["message"]
