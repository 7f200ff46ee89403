"""Payment endpoints: the request on the wire and the parsing of success and error envelopes."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
import respx
from portone_api_helpers import PAYMENT, TOKEN, fail, ok, paged, payment

from portone_recon._time import KST
from portone_recon.api import PortOneClient
from portone_recon.errors import BusinessError, MalformedResponseError, NotFoundError


@pytest.mark.usefixtures("token_route")
def test_fetch_payment_parses_record_and_sends_bearer(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.get("/payments/imp_123456789012").mock(return_value=ok(PAYMENT))
    p = client.fetch_payment("imp_123456789012")
    req = route.calls.last.request
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "include_sandbox" not in req.url.params
    assert p.amount == 8900 and isinstance(p.amount, int)
    assert p.status == "paid"
    assert p.paid_at == datetime(2024, 5, 1, 9, 0, 2, tzinfo=KST)
    assert p.paid_at is not None and p.paid_at.utcoffset() is not None
    assert p.failed_at is None and p.cancelled_at is None  # 0 -> None
    assert p.card_name == "신한카드"
    assert p.raw["pg_id"] == "MID0001"


@pytest.mark.usefixtures("token_route")
def test_fetch_payment_include_sandbox_and_escaped_id(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.get("/payments/imp%2F1").mock(return_value=ok(payment(imp_uid="imp/1", sandbox=True)))
    p = client.fetch_payment("imp/1", include_sandbox=True)
    assert route.calls.last.request.url.params["include_sandbox"] == "true"
    assert p.sandbox is True


@pytest.mark.usefixtures("token_route")
def test_fetch_payment_404_keeps_korean_message(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/payments/imp_missing").mock(return_value=fail(404, -1, "존재하지 않는 결제정보입니다."))
    with pytest.raises(NotFoundError) as info:
        client.fetch_payment("imp_missing")
    err = info.value
    assert (err.http_status, err.code, err.message) == (404, -1, "존재하지 않는 결제정보입니다.")
    assert err.method == "GET" and err.endpoint == "/payments/{imp_uid}"
    assert "존재하지 않는 결제정보입니다." in str(err)


@pytest.mark.usefixtures("token_route")
def test_fetch_payments_chunks_by_100_and_reports_missing(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    ids = [f"imp_{i:012d}" for i in range(150)]
    absent = {"imp_000000000007", "imp_000000000120"}

    def handler(request: httpx.Request) -> httpx.Response:
        asked = request.url.params.get_list("imp_uid[]")
        found = [payment(imp_uid=i, merchant_uid=f"m_{i}") for i in asked if i not in absent]
        return ok(found, status=207 if len(found) < len(asked) else 200)

    route = api.get("/payments").mock(side_effect=handler)
    result = client.fetch_payments(imp_uids=ids)
    sent = sorted((c.request.url.params.get_list("imp_uid[]") for c in route.calls), key=len, reverse=True)
    assert [len(s) for s in sent] == [100, 50]
    assert sent[0] == ids[:100] and sent[1] == ids[100:]
    raw_queries = [c.request.url.query.decode() for c in route.calls]
    assert all(q.startswith("imp_uid%5B%5D=imp_") for q in raw_queries)  # PHP-style brackets, escaped
    assert [p.imp_uid for p in result.found] == [i for i in ids if i not in absent]
    assert result.missing == ["imp_000000000007", "imp_000000000120"]
    assert len(result) == 148


@pytest.mark.usefixtures("token_route")
def test_fetch_payments_404_for_several_ids_is_split_until_each_id_is_answered(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    # Whether one unknown id makes PortOne answer 404 for all is unsettled: halves are asked again.
    def handler(request: httpx.Request) -> httpx.Response:
        asked = request.url.params.get_list("merchant_uid[]")
        if "m1" in asked:
            return fail(404, -1, "존재하지 않는 결제정보입니다.")
        return ok([{**PAYMENT, "merchant_uid": m, "imp_uid": f"imp_{m}"} for m in asked])

    route = api.get("/payments").mock(side_effect=handler)
    result = client.fetch_payments(merchant_uids=["m1", "m2", "m1"])
    asked = [c.request.url.params.get_list("merchant_uid[]") for c in route.calls]
    assert asked == [["m1", "m2"], ["m1"], ["m2"]]
    assert [p.merchant_uid for p in result.found] == ["m2"] and result.missing == ["m1"]


def test_fetch_payments_with_no_ids_sends_nothing(client: PortOneClient) -> None:
    result = client.fetch_payments()
    assert result.found == [] and result.missing == [] and client.api_calls == 0


@pytest.mark.usefixtures("token_route")
def test_find_payment_paths_and_sorting(client: PortOneClient, api: respx.MockRouter) -> None:
    with_status = api.get("/payments/find/sub_2024_05_user42/paid").mock(return_value=ok(PAYMENT))
    without = api.get("/payments/find/sub_2024_05_user42").mock(return_value=ok(PAYMENT))
    assert client.find_payment("sub_2024_05_user42", "paid", sorting="-paid").imp_uid == "imp_123456789012"
    assert with_status.calls.last.request.url.params["sorting"] == "-paid"
    client.find_payment("sub_2024_05_user42")
    assert "sorting" not in without.calls.last.request.url.params
    with pytest.raises(ValueError):
        client.find_payment("m", "refunded")
    with pytest.raises(ValueError):
        client.find_payment("m", sorting="newest")


@pytest.mark.usefixtures("token_route")
def test_find_all_pages_until_next_is_zero(client: PortOneClient, api: respx.MockRouter) -> None:
    pages = {
        "1": paged([payment(imp_uid="imp_a", status="failed", paid_at=0)], total=2, page=1, next_=2),
        "2": paged([payment(imp_uid="imp_b")], total=2, page=2, next_=0),
    }
    route = api.get("/payments/findAll/order%201/paid").mock(
        side_effect=lambda r: pages[r.url.params["page"]]
    )
    got = list(client.iter_payments_by_merchant_uid("order 1", "paid", limit=1, sorting="started"))
    assert [p.imp_uid for p in got] == ["imp_a", "imp_b"]
    params = [dict(c.request.url.params) for c in route.calls]
    assert sorted(p["page"] for p in params) == ["1", "2"]
    assert all(p["limit"] == "1" and p["sorting"] == "started" for p in params)


@pytest.mark.usefixtures("token_route")
def test_payments_by_status_splits_200_days_into_three_windows(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    since = datetime(2026, 1, 1, tzinfo=KST)
    a = int(since.timestamp())
    day = 86400

    def handler(request: httpx.Request) -> httpx.Response:
        lo = int(request.url.params["from"])
        return paged([payment(imp_uid=f"imp_{lo}")], total=1, page=1, next_=0)

    route = api.get("/payments/status/paid").mock(side_effect=handler)
    got = list(client.iter_payments_by_status("paid", a, a + 200 * day, sorting="-updated"))
    sent = [dict(c.request.url.params) for c in route.calls]
    # windows are fetched concurrently: the order the requests arrive in is the threads' (records
    # still come back in window order, below)
    assert sorted((int(s["from"]), int(s["to"])) for s in sent) == [
        (a, a + 90 * day - 1),
        (a + 90 * day, a + 180 * day - 1),
        (a + 180 * day, a + 200 * day - 1),
    ]
    assert all(s["limit"] == "1000" and s["page"] == "1" and s["sorting"] == "-updated" for s in sent)
    assert [p.imp_uid for p in got] == [f"imp_{a}", f"imp_{a + 90 * day}", f"imp_{a + 180 * day}"]


def test_payments_by_status_validates_arguments(client: PortOneClient) -> None:
    since = datetime(2026, 1, 1, tzinfo=KST)
    with pytest.raises(ValueError, match="status"):
        client.iter_payments_by_status("refunded", since, since)
    with pytest.raises(ValueError, match="limit"):
        client.iter_payments_by_status("paid", since, since, limit=1001)
    with pytest.raises(ValueError, match="naive"):
        client.iter_payments_by_status("paid", datetime(2026, 1, 1), since)
    assert client.api_calls == 0


@pytest.mark.usefixtures("token_route")
def test_payment_pages_are_raw_and_validated(client: PortOneClient, api: respx.MockRouter) -> None:
    body = json.dumps(
        {"code": 0, "message": None, "response": {"total": 1, "previous": 0, "next": 0, "list": [PAYMENT]}},
        ensure_ascii=False,
    ).encode()
    api.get("/payments/status/all").mock(return_value=httpx.Response(200, content=body))
    pages = list(client.iter_payment_pages("all", 0, 100))
    assert len(pages) == 1
    page = pages[0]
    assert page.body == body
    assert page.items == [PAYMENT]
    assert (page.total, page.next, page.page) == (1, 0, 1)
    assert page.endpoint == "/payments/status/{payment_status}"
    assert ("from", "0") in page.params and ("to", "99") in page.params and ("page", "1") in page.params
    assert "RawPage(" in repr(page) and "imp_" not in repr(page)


@pytest.mark.usefixtures("token_route")
def test_raw_pages_reject_bad_envelope(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/payments/status/paid").mock(return_value=ok({"total": 1, "next": 0, "list": {"x": 1}}))
    with pytest.raises(MalformedResponseError) as info:
        list(client.iter_payment_pages("paid", 0, 100))
    assert info.value.field == "response.list"
    assert info.value.endpoint == "/payments/status/{payment_status}"


@pytest.mark.usefixtures("token_route")
def test_wrong_type_in_a_listed_record_names_the_field(client: PortOneClient, api: respx.MockRouter) -> None:
    items = [PAYMENT, payment(amount="8900")]
    api.get("/payments/status/paid").mock(return_value=paged(items, total=2, page=1, next_=0))
    with pytest.raises(MalformedResponseError) as info:
        list(client.iter_payments_by_status("paid", 0, 100))
    assert info.value.field == "response.list[1].amount"
    assert "/payments/status/{payment_status}" in str(info.value)


@pytest.mark.usefixtures("token_route")
def test_cancel_partial_sends_explicit_amount_and_checksum(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    cancelled = payment(
        cancel_amount=1000,
        cancel_history=[
            {
                "pg_tid": "C1",
                "amount": 1000,
                "cancelled_at": 1714600000,
                "reason": "부분 환불",
                "cancellation_id": "cx_1",
                "receipt_url": None,
            }
        ],
    )
    route = api.post("/payments/cancel").mock(return_value=ok(cancelled))
    p = client.cancel_payment(imp_uid="imp_123456789012", amount=1000, checksum=8900, reason="부분 환불")
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "imp_uid": "imp_123456789012",
        "amount": 1000,
        "checksum": 8900,
        "reason": "부분 환불",
        "enable_webhook": False,
    }
    assert p.cancel_amount == 1000 and p.net_amount == 7900
    assert p.cancel_history[0].cancellation_id == "cx_1"
    assert p.cancel_history[0].cancelled_at == datetime.fromtimestamp(1714600000, tz=KST)


@pytest.mark.usefixtures("token_route")
def test_cancel_full_must_be_explicit_and_sends_no_amount(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    route = api.post("/payments/cancel").mock(
        return_value=ok(payment(status="cancelled", cancel_amount=8900))
    )
    client.cancel_payment(merchant_uid="sub_2024_05_user42", full=True, enable_webhook=True)
    body = json.loads(route.calls.last.request.content)
    assert body == {"merchant_uid": "sub_2024_05_user42", "enable_webhook": True}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"imp_uid": "imp_1"},
        {"imp_uid": "imp_1", "amount": 0},
        {"imp_uid": "imp_1", "amount": -5},
        {"imp_uid": "imp_1", "amount": 10.5},
        {"imp_uid": "imp_1", "amount": True},
        {"imp_uid": "imp_1", "amount": 100, "full": True},
        {"amount": 100},
        {"imp_uid": "imp_1", "merchant_uid": "m", "amount": 100},
        {"imp_uid": "imp_1", "amount": 100, "checksum": -1},
    ],
)
def test_cancel_refuses_ambiguous_arguments(client: PortOneClient, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        client.cancel_payment(**kwargs)  # type: ignore[arg-type]
    assert client.api_calls == 0


@pytest.mark.usefixtures("token_route")
def test_cancel_business_error_is_verbatim(client: PortOneClient, api: respx.MockRouter) -> None:
    api.post("/payments/cancel").mock(return_value=fail(200, 1, "이미 전액취소된 주문입니다."))
    with pytest.raises(BusinessError) as info:
        client.cancel_payment(imp_uid="imp_1", full=True)
    err = info.value
    assert (err.http_status, err.code, err.message) == (200, 1, "이미 전액취소된 주문입니다.")
    assert (err.method, err.endpoint) == ("POST", "/payments/cancel")
