"""The V2 client: settings, the PortOne auth header, requestBody, paging reach, errors, idempotency."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from portone_recon.api.v2 import MAX_PAGE_REACH, PortOneV2Client
from portone_recon.config import DEFAULT_V2_API_BASE, Settings
from portone_recon.errors import (
    BusinessError,
    ConfigError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    UnauthorizedError,
)

BASE = "https://v2.test"
SECRET = "v2-secret-Zq81"


def _body(request: httpx.Request) -> dict:
    return json.loads(parse_qs(urlsplit(str(request.url)).query)["requestBody"][0])


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def client() -> Iterator[PortOneV2Client]:
    c = PortOneV2Client(
        Settings(),
        api_secret=SECRET,
        store_id="store-1",
        v2_api_base=BASE,
        sleep=lambda s: None,
        rng=random.Random(1),
    )
    yield c
    c.close()


def test_settings_read_v2_variables_and_hide_the_secret(tmp_path: Path) -> None:
    s = Settings.from_env(
        {"PORTONE_API_SECRET": SECRET, "PORTONE_STORE_ID": "store-9"}, toml_path=tmp_path / "x"
    )
    assert s.has_v2 and not s.has_v1
    assert s.store_id == "store-9" and s.v2_api_base == DEFAULT_V2_API_BASE
    assert SECRET not in repr(s)
    s2 = Settings.from_env({"PORTONE_V2_API_BASE": "http://127.0.0.1:9/"}, toml_path=tmp_path / "x")
    assert s2.v2_api_base == "http://127.0.0.1:9" and not s2.has_v2
    with pytest.raises(ConfigError, match="PORTONE_API_SECRET"):
        s2.require_v2_credentials()
    with pytest.raises(ConfigError, match="PORTONE_V2_API_BASE"):
        Settings(v2_api_base="ftp://x")
    toml = tmp_path / "portone_recon.toml"
    toml.write_text('api_secret = "abc"\n')
    with pytest.raises(ConfigError, match="api_secret") as err:
        Settings.from_env({}, toml_path=toml)
    assert "abc" not in str(err.value)


def test_every_call_sends_the_portone_header_and_the_store(
    api: respx.MockRouter, client: PortOneV2Client
) -> None:
    route = api.get("/payments/ord%2F1").mock(return_value=httpx.Response(200, json={"id": "ord/1"}))
    assert client.get_payment("ord/1") == {"id": "ord/1"}
    req = route.calls.last.request
    assert req.headers["Authorization"] == f"PortOne {SECRET}"
    assert req.url.params["storeId"] == "store-1"
    assert SECRET not in repr(client)


def test_errors_map_type_and_status_and_never_show_the_secret(
    api: respx.MockRouter, client: PortOneV2Client
) -> None:
    api.get("/payments/a").mock(
        return_value=httpx.Response(404, json={"type": "PAYMENT_NOT_FOUND", "message": "없음"})
    )
    with pytest.raises(NotFoundError) as nf:
        client.get_payment("a")
    assert nf.value.error_type == "PAYMENT_NOT_FOUND" and nf.value.message == "없음"
    assert "PAYMENT_NOT_FOUND" in str(nf.value) and SECRET not in str(nf.value)
    api.get("/payments/b").mock(return_value=httpx.Response(403, json={"type": "FORBIDDEN"}))
    with pytest.raises(UnauthorizedError):
        client.get_payment("b")
    # An error type this client has never heard of keeps its status's class.
    api.get("/payments/c").mock(return_value=httpx.Response(409, json={"type": "SOMETHING_NEW", "extra": 1}))
    with pytest.raises(ConflictError) as cf:
        client.get_payment("c")
    assert cf.value.error_type == "SOMETHING_NEW"
    # A read is retried on 5xx (non-JSON gateway body included), then raised as ServerError.
    flaky = api.get("/payments/d").mock(return_value=httpx.Response(503, text="<html>busy</html>"))
    with pytest.raises(ServerError):
        client.get_payment("d")
    assert flaky.call_count == client.settings.max_retries + 1
    # Only 200 is success.
    api.get("/payments/e").mock(return_value=httpx.Response(201, json={"id": "e"}))
    with pytest.raises(Exception, match="HTTP 201"):
        client.get_payment("e")


def test_pay_sends_an_idempotency_key_and_retries_with_it(
    api: respx.MockRouter, client: PortOneV2Client
) -> None:
    answers = iter(
        [
            httpx.Response(500, json={"type": "UNKNOWN"}),
            httpx.Response(200, json={"payment": {"pgTxId": "t"}}),
        ]
    )
    route = api.post("/payments/p-1/billing-key").mock(side_effect=lambda r: next(answers))
    out = client.pay_with_billing_key(
        "p-1",
        billing_key="bk-1",
        order_name="plan",
        amount=9900,
        customer_id="c-1",
        idempotency_key="retry-p-1-x",
    )
    assert out["payment"]["pgTxId"] == "t"
    keys = {c.request.headers["Idempotency-Key"] for c in route.calls}
    assert keys == {'"retry-p-1-x"'} and route.call_count == 2
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "storeId": "store-1",
        "billingKey": "bk-1",
        "orderName": "plan",
        "amount": {"total": 9900},
        "currency": "KRW",
        "customer": {"id": "c-1"},
    }


def test_a_decline_is_a_known_refusal_not_an_unknown_outcome(
    api: respx.MockRouter, client: PortOneV2Client
) -> None:
    route = api.post("/payments/p-2/billing-key").mock(
        return_value=httpx.Response(
            502, json={"type": "PG_PROVIDER", "message": "한도초과", "pgCode": "51", "pgMessage": "x"}
        )
    )
    with pytest.raises(BusinessError) as err:
        client.pay_with_billing_key(
            "p-2", billing_key="bk", order_name="o", amount=1, idempotency_key="k" * 16
        )
    assert err.value.error_type == "PG_PROVIDER" and route.call_count == 1


def test_a_schedule_booking_without_a_key_is_never_resent(
    api: respx.MockRouter, client: PortOneV2Client
) -> None:
    route = api.post("/payments/s-1/schedule").mock(return_value=httpx.Response(500, json={"type": "X"}))
    with pytest.raises(OutcomeUnknownError):
        client.create_schedule(
            "s-1", billing_key="bk", order_name="o", amount=100, time_to_pay=datetime(2027, 1, 1, tzinfo=UTC)
        )
    assert route.call_count == 1
    body = json.loads(route.calls.last.request.content)
    assert body["timeToPay"] == "2027-01-01T00:00:00.000Z" and body["payment"]["storeId"] == "store-1"


def test_revoke_sends_one_id_per_call_and_accepts_already_revoked(
    api: respx.MockRouter, client: PortOneV2Client
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = _body(request)
        assert request.content == b""
        (sid,) = body["scheduleIds"]
        if sid == "gone":
            return httpx.Response(409, json={"type": "PAYMENT_SCHEDULE_ALREADY_REVOKED"})
        if sid == "done":
            return httpx.Response(409, json={"type": "PAYMENT_SCHEDULE_ALREADY_PROCESSED"})
        return httpx.Response(200, json={"revokedScheduleIds": [sid], "revokedAt": "2026-01-01T00:00:00Z"})

    api.delete("/payment-schedules").mock(side_effect=answer)
    assert client.revoke_schedule("s-1") is True
    assert client.revoke_schedule("gone") is False
    with pytest.raises(ConflictError):
        client.revoke_schedule("done")


def test_listings_split_windows_so_no_page_passes_the_60000_reach(api: respx.MockRouter) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # 150,000 payments, one every 10 seconds, over ~17 days: a single window would need pages past 60,000.
    times = [start + timedelta(seconds=10 * i) for i in range(150_000)]
    bodies: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = _body(request)
        bodies.append(body)
        page, flt = body["page"], body["filter"]
        assert (page["number"] + 1) * page["size"] <= MAX_PAGE_REACH
        lo = datetime.fromisoformat(flt["from"].replace("Z", "+00:00"))
        hi = datetime.fromisoformat(flt["until"].replace("Z", "+00:00"))
        hits = [i for i, t in enumerate(times) if lo <= t <= hi]
        chunk = hits[page["number"] * page["size"] : (page["number"] + 1) * page["size"]]
        return httpx.Response(
            200, json={"items": [{"id": f"p{i}"} for i in chunk], "page": {**page, "totalCount": len(hits)}}
        )

    api.get("/payments").mock(side_effect=answer)
    with PortOneV2Client(Settings(), api_secret=SECRET, v2_api_base=BASE, page_size=20_000) as c:
        got = {p["id"] for p in c.payments(start, start + timedelta(days=20))}
        assert c.windows_split >= 1
    assert got == {f"p{i}" for i in range(150_000)}
    first = bodies[0]
    assert first["filter"]["timestampType"] == "STATUS_CHANGED_AT" and "storeId" not in first["filter"]
