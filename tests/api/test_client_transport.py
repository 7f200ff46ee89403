"""Token cache, 401 refresh, retries, paging concurrency, error mapping and secrecy."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import respx
from portone_api_helpers import (
    BASE,
    PAYMENT,
    SECRET,
    TOKEN,
    FakeClock,
    fail,
    ok,
    paged,
    payment,
    token_response,
)

from portone_recon.api import PortOneClient, error_class_for_status
from portone_recon.config import Settings
from portone_recon.errors import (
    APIError,
    BadRequestError,
    BusinessError,
    ConfigError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    PortOneHTTPError,
    RateLimitError,
    ServerError,
    TransportError,
    UnauthorizedError,
)

# -- token ---------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_sent_as_bearer(
    client: PortOneClient, api: respx.MockRouter, token_route: respx.Route
) -> None:
    route = api.get("/payments/imp_123456789012").mock(return_value=ok(PAYMENT))
    client.fetch_payment("imp_123456789012")
    client.fetch_payment("imp_123456789012")
    assert token_route.call_count == 1
    assert json.loads(token_route.calls.last.request.content) == {
        "imp_key": "imp_apikey",
        "imp_secret": SECRET,
    }
    assert "Authorization" not in token_route.calls.last.request.headers
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in route.calls)
    assert client.api_calls == 3


def test_token_refreshed_shortly_before_expiry_by_server_lifetime(
    client: PortOneClient, api: respx.MockRouter, clock: FakeClock
) -> None:
    # PortOne's clock is far from ours: only expired_at - now (1800 s) matters.
    token_route = api.post("/users/getToken").mock(
        side_effect=[token_response("tok_1", now=10, lifetime=1800), token_response("tok_2", now=5000)]
    )
    route = api.get("/payments/imp_123456789012").mock(return_value=ok(PAYMENT))
    client.fetch_payment("imp_123456789012")
    clock.t += 1800 - 61  # still more than the 60 s margin left
    client.fetch_payment("imp_123456789012")
    assert token_route.call_count == 1
    clock.t += 2  # inside the last minute: refresh early
    client.fetch_payment("imp_123456789012")
    assert token_route.call_count == 2
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer tok_1",
        "Bearer tok_1",
        "Bearer tok_2",
    ]


def test_401_fetches_a_token_once_and_retries_once(client: PortOneClient, api: respx.MockRouter) -> None:
    token_route = api.post("/users/getToken").mock(
        side_effect=[token_response("tok_old"), token_response("tok_new")]
    )
    route = api.get("/payments/imp_123456789012").mock(
        side_effect=[fail(401, -1, "Unauthorized"), ok(PAYMENT)]
    )
    assert client.fetch_payment("imp_123456789012").imp_uid == "imp_123456789012"
    assert token_route.call_count == 2
    assert [c.request.headers["Authorization"] for c in route.calls] == ["Bearer tok_old", "Bearer tok_new"]


def test_second_401_is_raised_not_looped(client: PortOneClient, api: respx.MockRouter) -> None:
    token_route = api.post("/users/getToken").mock(side_effect=[token_response("a"), token_response("b")])
    route = api.get("/payments/imp_1").mock(return_value=fail(401, -1, "Unauthorized"))
    with pytest.raises(UnauthorizedError):
        client.fetch_payment("imp_1")
    assert route.call_count == 2 and token_route.call_count == 2


def test_bad_credentials_raise_unauthorized_without_secret(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    api.post("/users/getToken").mock(
        return_value=fail(401, -1, "imp_key, imp_secret 정보가 올바르지 않습니다.")
    )
    with pytest.raises(UnauthorizedError) as info:
        client.fetch_payment("imp_1")
    assert info.value.endpoint == "/users/getToken"
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_eight_threads_cause_one_token_request(client: PortOneClient, api: respx.MockRouter) -> None:
    started = threading.Barrier(8)

    def slow_token(request: httpx.Request) -> httpx.Response:
        time.sleep(0.2)  # keep the other threads waiting on the lock, not a timing assertion
        return token_response()

    token_route = api.post("/users/getToken").mock(side_effect=slow_token)
    api.get("/payments/imp_123456789012").mock(return_value=ok(PAYMENT))

    def work(_: int) -> str:
        started.wait()
        return client.fetch_payment("imp_123456789012").imp_uid

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    assert results == ["imp_123456789012"] * 8
    assert token_route.call_count == 1
    assert client.api_calls == 9


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("token_route")
def test_get_503_then_200_is_retried(
    client: PortOneClient, api: respx.MockRouter, sleeps: list[float]
) -> None:
    route = api.get("/payments/imp_123456789012").mock(
        side_effect=[fail(503, -1, "Service Unavailable"), ok(PAYMENT)]
    )
    assert client.fetch_payment("imp_123456789012").amount == 8900
    assert route.call_count == 2
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


@pytest.mark.usefixtures("token_route")
def test_get_429_honours_retry_after(
    client: PortOneClient, api: respx.MockRouter, sleeps: list[float]
) -> None:
    route = api.get("/payments/imp_123456789012").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"code": -1, "message": "Too Many"}),
            httpx.Response(429, headers={"Retry-After": "0"}),
            ok(PAYMENT),
        ]
    )
    client.fetch_payment("imp_123456789012")
    assert route.call_count == 3
    assert sleeps[0] == 3.0
    assert sleeps[1] >= 0.5  # Retry-After: 0 still waits the backoff


@pytest.mark.usefixtures("token_route")
def test_get_retries_exhausted_raise_mapped_error(
    client: PortOneClient, api: respx.MockRouter, sleeps: list[float]
) -> None:
    route = api.get("/payments/imp_1").mock(return_value=fail(502, -1, "Bad Gateway"))
    with pytest.raises(ServerError) as info:
        client.fetch_payment("imp_1")
    assert route.call_count == 5 and len(sleeps) == 4  # max_retries=4
    assert sleeps == sorted(sleeps)
    assert info.value.http_status == 502


@pytest.mark.usefixtures("token_route")
def test_get_429_too_long_is_raised_with_retry_after(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/payments/imp_1").mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitError) as info:
        client.fetch_payment("imp_1")
    assert info.value.retry_after == 3600.0


@pytest.mark.usefixtures("token_route")
@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError])
def test_get_network_errors_are_retried(
    client: PortOneClient, api: respx.MockRouter, exc: type[Exception], sleeps: list[float]
) -> None:
    route = api.get("/payments/imp_123456789012").mock(side_effect=[exc("boom"), ok(PAYMENT)])
    client.fetch_payment("imp_123456789012")
    assert route.call_count == 2 and len(sleeps) == 1


@pytest.mark.usefixtures("token_route")
def test_get_timeouts_exhausted_raise_transport_error(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/payments/imp_1").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(TransportError) as info:
        client.fetch_payment("imp_1")
    assert not isinstance(info.value, OutcomeUnknownError)
    assert "ReadTimeout after 5 attempt(s)" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


@pytest.mark.usefixtures("token_route")
def test_post_read_timeout_is_not_retried_and_outcome_unknown(
    client: PortOneClient, api: respx.MockRouter, sleeps: list[float]
) -> None:
    route = api.post("/subscribe/payments/again").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(OutcomeUnknownError) as info:
        client.pay_again(customer_uid="cu", merchant_uid="again_1", amount=8900, name="월간 구독")
    assert route.call_count == 1 and sleeps == []
    req = info.value.request
    assert (req.method, req.endpoint) == ("POST", "/subscribe/payments/again")
    assert req.json == {"customer_uid": "cu", "merchant_uid": "again_1", "amount": 8900, "name": "월간 구독"}


@pytest.mark.usefixtures("token_route")
def test_post_connect_error_is_retried(
    client: PortOneClient, api: respx.MockRouter, sleeps: list[float]
) -> None:
    route = api.post("/payments/cancel").mock(side_effect=[httpx.ConnectError("refused"), ok(PAYMENT)])
    client.cancel_payment(imp_uid="imp_1", amount=100)
    assert route.call_count == 2 and len(sleeps) == 1


@pytest.mark.usefixtures("token_route")
def test_post_503_is_outcome_unknown(
    client: PortOneClient, api: respx.MockRouter, sleeps: list[float]
) -> None:
    route = api.post("/payments/cancel").mock(return_value=httpx.Response(503, text="<html>busy</html>"))
    with pytest.raises(OutcomeUnknownError) as info:
        client.cancel_payment(imp_uid="imp_1", amount=100)
    assert route.call_count == 1 and sleeps == []
    assert isinstance(info.value.__cause__, ServerError)


@pytest.mark.usefixtures("token_route")
def test_post_429_is_rate_limit_not_retried(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.post("/payments/cancel").mock(return_value=httpx.Response(429, headers={"Retry-After": "1"}))
    with pytest.raises(RateLimitError) as info:
        client.cancel_payment(imp_uid="imp_1", amount=100)
    assert route.call_count == 1 and info.value.retry_after == 1.0


@pytest.mark.usefixtures("token_route")
def test_outcome_unknown_redacts_card_data(client: PortOneClient, api: respx.MockRouter) -> None:
    api.post("/subscribe/customers/cu").mock(side_effect=httpx.ReadError("reset"))
    with pytest.raises(OutcomeUnknownError) as info:
        client.issue_billing_key("cu", card_number="1234-5678-9012-3456", expiry="2029-12", pwd_2digit="12")
    assert info.value.request.json == {"card_number": "***", "expiry": "***", "pwd_2digit": "***"}
    assert "1234-5678" not in repr(info.value.request)


# -- error mapping and malformed bodies ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (200, BusinessError),
        (207, BusinessError),
        (400, BadRequestError),
        (401, UnauthorizedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (403, PortOneHTTPError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[PortOneHTTPError]) -> None:
    assert error_class_for_status(status) is cls


@pytest.mark.usefixtures("token_route")
@pytest.mark.parametrize(
    ("response", "field"),
    [
        (httpx.Response(200, text="<html>not json</html>"), "<body>"),
        (httpx.Response(200, json={"message": None, "response": PAYMENT}), "code"),
        (httpx.Response(200, json={"code": "0", "message": None, "response": PAYMENT}), "code"),
        (httpx.Response(200, json=[1, 2]), "<body>"),
        (ok(payment(paid_at="2024-05-01")), "response.paid_at"),
        (ok(payment(status="refunded")), "response.status"),
        (ok(None), "response"),
    ],
)
def test_malformed_bodies_name_endpoint_and_field(
    client: PortOneClient, api: respx.MockRouter, response: httpx.Response, field: str
) -> None:
    api.get("/payments/imp_1").mock(return_value=response)
    with pytest.raises(MalformedResponseError) as info:
        client.fetch_payment("imp_1")
    assert info.value.field == field
    assert info.value.endpoint == "/payments/{imp_uid}" and info.value.method == "GET"


@pytest.mark.usefixtures("token_route")
def test_non_json_error_body_still_maps_status(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/payments/imp_1").mock(return_value=httpx.Response(404, text="Not Found"))
    with pytest.raises(NotFoundError) as info:
        client.fetch_payment("imp_1")
    assert info.value.code is None


@pytest.mark.usefixtures("token_route")
def test_generic_request_returns_response(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.get("/payments/imp_1/balance").mock(return_value=ok({"amount": 1000}))
    got = client.request("get", "/payments/imp_1/balance", params={"x": [1, 2], "y": None, "z": True})
    assert got == {"amount": 1000}
    assert route.calls.last.request.url.params.get_list("x") == ["1", "2"]
    assert route.calls.last.request.url.params["z"] == "true"
    assert "y" not in route.calls.last.request.url.params


# -- paging --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("token_route")
def test_concurrent_pages_yield_in_order_and_stay_bounded(api: respx.MockRouter) -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    total_items = 23  # 5 per page -> 5 pages

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        page = int(request.url.params["page"])
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        start = (page - 1) * 5
        items = [payment(imp_uid=f"imp_{i:03d}") for i in range(start, min(start + 5, total_items))]
        return paged(items, total=total_items, page=page, next_=page + 1 if page < 5 else 0)

    route = api.get("/payments/status/paid").mock(side_effect=handler)
    with PortOneClient(
        imp_key="k", imp_secret=SECRET, api_base=BASE, concurrency=2, sleep=lambda s: None
    ) as c:
        got = [p.imp_uid for p in c.iter_payments_by_status("paid", 0, 100, limit=5)]
    assert got == [f"imp_{i:03d}" for i in range(total_items)]
    assert route.call_count == 5
    assert peak <= 2


@pytest.mark.usefixtures("token_route")
def test_paging_stops_at_next_zero_even_if_total_says_more(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    pages = {
        1: paged([payment(imp_uid="imp_1")], total=4, page=1, next_=2),
        2: paged([payment(imp_uid="imp_2")], total=4, page=2, next_=0),
        3: paged([], total=4, page=3, next_=0),
        4: paged([], total=4, page=4, next_=0),
    }
    api.get("/payments/status/paid").mock(side_effect=lambda r: pages[int(r.url.params["page"])])
    got = [p.imp_uid for p in client.iter_payments_by_status("paid", 0, 100, limit=1)]
    assert got == ["imp_1", "imp_2"]


@pytest.mark.usefixtures("token_route")
def test_paging_follows_next_when_listing_grows(client: PortOneClient, api: respx.MockRouter) -> None:
    pages = {
        1: paged([payment(imp_uid="imp_1")], total=2, page=1, next_=2),
        2: paged([payment(imp_uid="imp_2")], total=3, page=2, next_=3),
        3: paged([payment(imp_uid="imp_3")], total=3, page=3, next_=0),
    }
    api.get("/payments/status/paid").mock(side_effect=lambda r: pages[int(r.url.params["page"])])
    got = [p.imp_uid for p in client.iter_payments_by_status("paid", 0, 100, limit=1)]
    assert got == ["imp_1", "imp_2", "imp_3"]


@pytest.mark.usefixtures("token_route")
def test_paging_refuses_a_next_that_loops(client: PortOneClient, api: respx.MockRouter) -> None:
    pages = {
        1: paged([payment(imp_uid="imp_1")], total=9, page=1, next_=2),
        2: paged([payment(imp_uid="imp_2")], total=9, page=2, next_=2),
    }
    api.get("/subscribe/customers/cu/payments").mock(side_effect=lambda r: pages[int(r.url.params["page"])])
    with pytest.raises(MalformedResponseError) as info:
        list(client.iter_billing_key_payments("cu"))
    assert info.value.field == "response.next"


# -- construction, repr, secrecy -------------------------------------------------------------------


def test_from_env_names_missing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="PORTONE_IMP_KEY and PORTONE_IMP_SECRET"):
        PortOneClient.from_env()
    monkeypatch.setenv("PORTONE_IMP_KEY", "imp_apikey")
    with pytest.raises(ConfigError, match="PORTONE_IMP_SECRET") as info:
        PortOneClient.from_env()
    assert "PORTONE_IMP_KEY" not in str(info.value).split("not set")[0]


def test_from_env_reads_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTONE_IMP_KEY", "imp_apikey")
    monkeypatch.setenv("PORTONE_IMP_SECRET", SECRET)
    monkeypatch.setenv("PORTONE_API_BASE", "http://127.0.0.1:8099/")
    monkeypatch.setenv("PORTONE_CONCURRENCY", "3")
    with PortOneClient.from_env(max_retries=1) as c:
        assert c.settings.api_base == "http://127.0.0.1:8099"
        assert c.settings.concurrency == 3 and c.settings.max_retries == 1
        assert repr(c) == "PortOneClient(api_base='http://127.0.0.1:8099', imp_key='imp_apikey', api_calls=0)"


def test_constructor_validates_overrides() -> None:
    with pytest.raises(ConfigError):
        PortOneClient(imp_key="k", imp_secret="s", concurrency=0)
    with pytest.raises(ConfigError):
        PortOneClient(Settings(imp_key="k"))


@pytest.mark.usefixtures("token_route")
def test_secret_and_token_never_in_repr_logs_or_errors(
    client: PortOneClient, api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get("/payments/imp_1").mock(side_effect=[fail(503, -1, "busy"), fail(404, -1, "없음")])
    with pytest.raises(NotFoundError) as info:
        client.fetch_payment("imp_1")
    texts = [repr(client), str(info.value), repr(info.value), caplog.text, repr(client.settings)]
    # the client and every object it holds, one level down (transport, token cache, pager, ...)
    parts: list[object] = [*vars(client).values()]
    parts += [v for p in list(parts) if hasattr(p, "__dict__") for v in vars(p).values()]
    texts += [repr(p) for p in parts]
    for text in texts:
        assert SECRET not in text
        assert TOKEN not in text
    assert "GET /payments/{imp_uid}" in caplog.text


@pytest.mark.usefixtures("token_route")
def test_api_calls_counts_token_and_retries(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/payments/imp_123456789012").mock(side_effect=[fail(500, -1, "x"), ok(PAYMENT)])
    client.fetch_payment("imp_123456789012")
    assert client.api_calls == 3
    client.reset_api_calls()
    assert client.api_calls == 0


def test_closed_client_refuses(client: PortOneClient) -> None:
    client.close()
    with pytest.raises(APIError, match="closed"):
        client.request("GET", "/payments/imp_1")
