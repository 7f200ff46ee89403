"""Billing-key and schedule endpoints: request on the wire, parsing, PortOne's Korean refusals."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
import respx
from portone_api_helpers import CUSTOMER, PAYMENT, SCHEDULE, customer, fail, ok, paged, payment, schedule

from portone_recon._time import KST
from portone_recon.api import PortOneClient
from portone_recon.errors import BadRequestError, BusinessError, NotFoundError, ServerError


def _u(*args: int) -> int:
    return int(datetime(*args, tzinfo=KST).timestamp())


@pytest.mark.usefixtures("token_route")
def test_fetch_billing_key(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/subscribe/customers/user42_card1").mock(return_value=ok(CUSTOMER))
    key = client.fetch_billing_key("user42_card1")
    assert key.customer_uid == "user42_card1" and key.card_name == "신한카드"
    assert key.inserted == datetime.fromtimestamp(1714000000, tz=KST)


@pytest.mark.usefixtures("token_route")
def test_fetch_billing_key_404_and_200_refusal(client: PortOneClient, api: respx.MockRouter) -> None:
    msg = "요청하신 customer_uid(nobody)로 등록된 정보를 찾을 수 없습니다."
    api.get("/subscribe/customers/nobody").mock(return_value=fail(404, 1, msg))
    api.get("/subscribe/customers/ghost").mock(return_value=fail(200, -1, msg))
    with pytest.raises(NotFoundError) as nf:
        client.fetch_billing_key("nobody")
    assert nf.value.message == msg and nf.value.endpoint == "/subscribe/customers/{customer_uid}"
    with pytest.raises(BusinessError) as be:
        client.fetch_billing_key("ghost")
    assert be.value.code == -1 and be.value.message == msg


@pytest.mark.usefixtures("token_route")
def test_fetch_billing_keys_chunks_and_207(client: PortOneClient, api: respx.MockRouter) -> None:
    ids = [f"cu_{i}" for i in range(205)]

    def handler(request: httpx.Request) -> httpx.Response:
        asked = request.url.params.get_list("customer_uid[]")
        found = [customer(customer_uid=c) for c in asked if c != "cu_150"]
        return ok(found, status=207 if len(found) < len(asked) else 200)

    route = api.get("/subscribe/customers").mock(side_effect=handler)
    result = client.fetch_billing_keys(ids)
    assert sorted(len(c.request.url.params.get_list("customer_uid[]")) for c in route.calls) == [5, 100, 100]
    assert result.missing == ["cu_150"]
    assert [k.customer_uid for k in result.found] == [c for c in ids if c != "cu_150"]


@pytest.mark.usefixtures("token_route")
def test_issue_billing_key_body(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.post("/subscribe/customers/user42_card1").mock(return_value=ok(CUSTOMER))
    key = client.issue_billing_key(
        "user42_card1",
        card_number="1234-1234-1234-1234",
        expiry="2029-12",
        birth="900101",
        pwd_2digit="12",
        pg="nice_v2",
        customer_name="홍길동",
    )
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "card_number": "1234-1234-1234-1234",
        "expiry": "2029-12",
        "birth": "900101",
        "pwd_2digit": "12",
        "pg": "nice_v2",
        "customer_name": "홍길동",
    }
    assert key.pg_provider == "nice_v2"


@pytest.mark.usefixtures("token_route")
def test_issue_billing_key_pg_refusal(client: PortOneClient, api: respx.MockRouter) -> None:
    msg = "카드정보 인증 및 빌키 발급에 실패하였습니다."
    api.post("/subscribe/customers/cu").mock(return_value=fail(200, -1, msg))
    with pytest.raises(BusinessError) as info:
        client.issue_billing_key("cu", card_number="1234-1234-1234-1234", expiry="2029-12")
    assert info.value.message == msg and info.value.method == "POST"


@pytest.mark.usefixtures("token_route")
def test_delete_billing_key_sends_reason(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.delete("/subscribe/customers/user42_card1").mock(return_value=ok(CUSTOMER))
    client.delete_billing_key("user42_card1", reason="해지")
    assert route.calls.last.request.url.params["reason"] == "해지"


@pytest.mark.usefixtures("token_route")
def test_billing_key_payments_follow_next(client: PortOneClient, api: respx.MockRouter) -> None:
    pages = {
        "1": paged([payment(imp_uid="imp_1")], total=3, page=1, next_=2),
        "2": paged([payment(imp_uid="imp_2")], total=3, page=2, next_=3),
        "3": paged([payment(imp_uid="imp_3")], total=3, page=3, next_=0),
    }
    route = api.get("/subscribe/customers/user42_card1/payments").mock(
        side_effect=lambda r: pages[r.url.params["page"]]
    )
    got = [p.imp_uid for p in client.iter_billing_key_payments("user42_card1")]
    assert got == ["imp_1", "imp_2", "imp_3"]
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2", "3"]
    assert all("limit" not in c.request.url.params for c in route.calls)


@pytest.mark.usefixtures("token_route")
def test_billing_key_schedules_params(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.get("/subscribe/customers/user42_card1/schedules").mock(
        return_value=paged([SCHEDULE], total=1, page=1, next_=0)
    )
    got = list(
        client.iter_billing_key_schedules(
            "user42_card1",
            datetime(2026, 1, 1, tzinfo=KST),
            datetime(2026, 2, 1, tzinfo=KST),
            status="scheduled",
        )
    )
    assert len(got) == 1 and got[0].schedule_status == "scheduled" and got[0].payment_status is None
    assert dict(route.calls.last.request.url.params) == {
        "from": str(_u(2026, 1, 1)),
        "to": str(_u(2026, 2, 1)),
        "schedule-status": "scheduled",
        "page": "1",
    }


@pytest.mark.usefixtures("token_route")
def test_pay_again_declined_is_code_0_with_failed_status(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    declined = payment(
        status="failed", paid_at=0, failed_at=1714521602, fail_reason="한도초과", imp_uid="imp_9"
    )
    route = api.post("/subscribe/payments/again").mock(return_value=ok(declined))
    p = client.pay_again(
        customer_uid="user42_card1",
        merchant_uid="again_1",
        amount=8900,
        name="월간 구독",
        notice_url="https://h/",
    )
    assert json.loads(route.calls.last.request.content) == {
        "customer_uid": "user42_card1",
        "merchant_uid": "again_1",
        "amount": 8900,
        "name": "월간 구독",
        "notice_url": "https://h/",
    }
    assert p.status == "failed" and p.fail_reason == "한도초과" and p.paid_at is None


@pytest.mark.usefixtures("token_route")
def test_pay_again_unknown_customer(client: PortOneClient, api: respx.MockRouter) -> None:
    api.post("/subscribe/payments/again").mock(return_value=fail(200, -1, "등록되지 않은 구매자입니다."))
    with pytest.raises(BusinessError) as info:
        client.pay_again(customer_uid="nobody", merchant_uid="m", amount=100, name="x")
    assert info.value.message == "등록되지 않은 구매자입니다."


def test_pay_again_refuses_non_integer_amount(client: PortOneClient) -> None:
    with pytest.raises(ValueError, match="amount"):
        client.pay_again(customer_uid="c", merchant_uid="m", amount=99.5, name="x")  # type: ignore[arg-type]


@pytest.mark.usefixtures("token_route")
def test_create_schedules_converts_datetimes(client: PortOneClient, api: respx.MockRouter) -> None:
    at = datetime(2026, 6, 1, 10, 0, tzinfo=KST)
    created = [
        schedule(merchant_uid="s1", schedule_at=_u(2026, 6, 1, 10)),
        schedule(merchant_uid="s2", schedule_at=_u(2026, 7, 1, 10)),
    ]
    route = api.post("/subscribe/payments/schedule").mock(return_value=ok(created))
    got = client.create_schedules(
        "user42_card1",
        [
            {"merchant_uid": "s1", "schedule_at": at, "amount": 8900, "name": "월간 구독", "currency": "KRW"},
            {"merchant_uid": "s2", "schedule_at": _u(2026, 7, 1, 10), "amount": 8900, "name": "월간 구독"},
        ],
    )
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "customer_uid": "user42_card1",
        "schedules": [
            {
                "merchant_uid": "s1",
                "schedule_at": _u(2026, 6, 1, 10),
                "amount": 8900,
                "name": "월간 구독",
                "currency": "KRW",
            },
            {"merchant_uid": "s2", "schedule_at": _u(2026, 7, 1, 10), "amount": 8900, "name": "월간 구독"},
        ],
    }
    assert [s.merchant_uid for s in got] == ["s1", "s2"]
    assert got[0].schedule_at == at


@pytest.mark.usefixtures("token_route")
def test_create_schedules_refusals(client: PortOneClient, api: respx.MockRouter) -> None:
    api.post("/subscribe/payments/schedule").mock(return_value=fail(200, 1, "등록된 고객정보가 없습니다."))
    with pytest.raises(BusinessError) as info:
        client.create_schedules("nobody", [{"merchant_uid": "s1", "schedule_at": 1800000000, "amount": 100}])
    assert info.value.code == 1 and info.value.message == "등록된 고객정보가 없습니다."


@pytest.mark.parametrize(
    "entry",
    [
        {"schedule_at": 1800000000, "amount": 100},
        {"merchant_uid": "s", "amount": 100},
        {"merchant_uid": "s", "schedule_at": 1800000000, "amount": 0},
        {"merchant_uid": "s", "schedule_at": datetime(2026, 1, 1), "amount": 100},
        {"merchant_uid": "", "schedule_at": 1800000000, "amount": 100},
    ],
)
def test_create_schedules_validates_before_sending(client: PortOneClient, entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"schedules\[0\]"):
        client.create_schedules("cu", [entry])
    assert client.api_calls == 0


@pytest.mark.usefixtures("token_route")
def test_unschedule_body_and_nothing_to_revoke(client: PortOneClient, api: respx.MockRouter) -> None:
    revoked = schedule(schedule_status="revoked", revoked_at=1714600000)
    route = api.post("/subscribe/payments/unschedule").mock(
        side_effect=[ok([revoked]), fail(200, 1, "취소할 예약결제 기록이 존재하지 않습니다.")]
    )
    got = client.unschedule(customer_uid="user42_card1", merchant_uids=["sub_2024_06_user42"])
    assert json.loads(route.calls.last.request.content) == {
        "customer_uid": "user42_card1",
        "merchant_uid": ["sub_2024_06_user42"],
    }
    assert got[0].schedule_status == "revoked" and got[0].revoked_at is not None
    with pytest.raises(BusinessError) as info:
        client.unschedule(merchant_uids=["sub_2024_06_user42"])
    assert info.value.message == "취소할 예약결제 기록이 존재하지 않습니다."
    assert json.loads(route.calls.last.request.content) == {"merchant_uid": ["sub_2024_06_user42"]}


def test_unschedule_refuses_ambiguous_arguments(client: PortOneClient) -> None:
    with pytest.raises(ValueError):
        client.unschedule()
    with pytest.raises(ValueError):
        client.unschedule(customer_uid="cu", merchant_uids=[])
    with pytest.raises(ValueError):
        client.unschedule(merchant_uids="s1")
    assert client.api_calls == 0


@pytest.mark.usefixtures("token_route")
def test_fetch_schedule(client: PortOneClient, api: respx.MockRouter) -> None:
    executed = schedule(
        schedule_status="executed", payment_status="paid", imp_uid="imp_7", executed_at=1717200003
    )
    api.get("/subscribe/payments/schedule/sub_2024_06_user42").mock(return_value=ok(executed))
    s = client.fetch_schedule("sub_2024_06_user42")
    assert (s.schedule_status, s.payment_status, s.imp_uid) == ("executed", "paid", "imp_7")
    assert s.executed_at == datetime.fromtimestamp(1717200003, tz=KST)


@pytest.mark.usefixtures("token_route")
def test_schedules_seven_months_three_windows(client: PortOneClient, api: respx.MockRouter) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        lo = request.url.params["schedule_from"]
        return paged([schedule(merchant_uid=f"s_{lo}")], total=1, page=1, next_=0)

    route = api.get("/subscribe/payments/schedule").mock(side_effect=handler)
    got = list(
        client.iter_schedules(
            datetime(2026, 1, 1, tzinfo=KST), datetime(2026, 8, 1, tzinfo=KST), status="executed"
        )
    )
    sent = [dict(c.request.url.params) for c in route.calls]
    day = 86400
    lows = [_u(2026, 1, 1), _u(2026, 1, 1) + 90 * day, _u(2026, 1, 1) + 180 * day]
    # windows are fetched concurrently (arrival order is the threads'); records come in window order
    assert sorted((int(s["schedule_from"]), int(s["schedule_to"])) for s in sent) == [
        (lows[0], lows[1]),
        (lows[1], lows[2]),
        (lows[2], _u(2026, 8, 1)),
    ]
    assert all(s["schedule_status"] == "executed" and s["limit"] == "1000" for s in sent)
    assert [s.merchant_uid for s in got] == [f"s_{lo}" for lo in lows]


@pytest.mark.usefixtures("token_route")
def test_customer_schedules_use_spec_param_names(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.get("/subscribe/payments/schedule/customers/user42_card1").mock(
        return_value=paged([SCHEDULE], total=1, page=1, next_=0)
    )
    got = list(client.iter_customer_schedules("user42_card1", _u(2026, 1, 1), _u(2026, 3, 1)))
    assert dict(route.calls.last.request.url.params) == {
        "from": str(_u(2026, 1, 1)),
        "to": str(_u(2026, 3, 1)),
        "page": "1",
    }
    assert got[0].merchant_uid == "sub_2024_06_user42"
    with pytest.raises(ValueError):
        list(client.iter_customer_schedules("user42_card1", 0, 1, status="paid"))


@pytest.mark.usefixtures("token_route")
def test_update_schedule_put(client: PortOneClient, api: respx.MockRouter) -> None:
    at = datetime(2026, 6, 2, 9, tzinfo=KST)
    route = api.put("/subscribe/payments/schedule/s1").mock(return_value=ok(schedule(merchant_uid="s1")))
    client.update_schedule("s1", at)
    assert json.loads(route.calls.last.request.content) == {"schedule_at": int(at.timestamp())}


@pytest.mark.usefixtures("token_route")
def test_update_schedule_400_in_korean(client: PortOneClient, api: respx.MockRouter) -> None:
    api.put("/subscribe/payments/schedule/s1").mock(return_value=fail(400, 1, "이미 실행된 예약결제입니다."))
    with pytest.raises(BadRequestError) as info:
        client.update_schedule("s1", 1800000000)
    assert info.value.message == "이미 실행된 예약결제입니다."
    assert info.value.endpoint == "/subscribe/payments/schedule/{merchant_uid}"


@pytest.mark.usefixtures("token_route")
def test_reschedule_and_retry(client: PortOneClient, api: respx.MockRouter) -> None:
    re_route = api.post("/subscribe/payments/schedule/s1/reschedule").mock(
        return_value=ok(schedule(merchant_uid="s1", schedule_at=1800000000))
    )
    retry_route = api.post("/subscribe/payments/schedule/s1/retry").mock(return_value=ok(PAYMENT))
    s = client.reschedule("s1", 1800000000)
    assert json.loads(re_route.calls.last.request.content) == {"schedule_at": 1800000000}
    assert s.schedule_at == datetime.fromtimestamp(1800000000, tz=KST)
    p = client.retry_schedule("s1")
    assert retry_route.calls.last.request.content == b""
    assert p.status == "paid"


@pytest.mark.usefixtures("token_route")
def test_retry_schedule_500_with_body_is_outcome_unknown(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    from portone_recon.errors import OutcomeUnknownError

    route = api.post("/subscribe/payments/schedule/s1/retry").mock(
        return_value=fail(500, -1, "지원하지 않는 PG사입니다.")
    )
    with pytest.raises(OutcomeUnknownError) as info:
        client.retry_schedule("s1")
    assert route.call_count == 1
    assert isinstance(info.value.__cause__, ServerError)
    assert info.value.__cause__.message == "지원하지 않는 PG사입니다."
    assert info.value.request.endpoint == "/subscribe/payments/schedule/{merchant_uid}/retry"
