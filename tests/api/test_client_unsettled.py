"""Client behaviour where PortOne's V1 API is ambiguous: range refusals, shrinking listings, 404 lookups,
odd key shapes, and the agency ``Tier`` header."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

import httpx
import pytest
import respx
from portone_api_helpers import BASE, SECRET, customer, fail, ok, paged, payment, schedule

from portone_recon._time import KST
from portone_recon.api import BillingKey, PortOneClient
from portone_recon.config import Secret, Settings
from portone_recon.errors import BadRequestError, ConfigError, NotFoundError, ServerError


@pytest.mark.usefixtures("token_route")
def test_tier_header_is_sent_on_every_request_when_set(api: respx.MockRouter) -> None:
    route = api.get("/payments/imp_1").mock(return_value=ok(payment(imp_uid="imp_1")))
    settings = Settings(imp_key="k", imp_secret=Secret(SECRET), api_base=BASE, tier="T001")
    with PortOneClient(settings, sleep=lambda s: None) as client:
        client.fetch_payment("imp_1")
    token = api.routes[0]
    assert token.calls.last.request.headers["Tier"] == "T001"
    assert route.calls.last.request.headers["Tier"] == "T001"
    assert "Tier" not in httpx.Request("GET", BASE).headers
    assert Settings.from_env({"PORTONE_TIER": "T002"}).tier == "T002"
    with pytest.raises(ConfigError, match="PORTONE_TIER"):
        Settings(tier=" T1")


@pytest.mark.usefixtures("token_route")
def test_no_tier_header_without_the_setting(client: PortOneClient, api: respx.MockRouter) -> None:
    route = api.get("/payments/imp_1").mock(return_value=ok(payment(imp_uid="imp_1")))
    client.fetch_payment("imp_1")
    assert "tier" not in {k.lower() for k in route.calls.last.request.headers}


@pytest.mark.usefixtures("token_route")
def test_a_refused_schedule_window_is_split_and_each_half_listed(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    longest = 45 * 86400  # a PortOne stricter than any documented reading

    def handler(request: httpx.Request) -> httpx.Response:
        lo, hi = int(request.url.params["schedule_from"]), int(request.url.params["schedule_to"])
        if hi - lo > longest:
            return fail(400, -1, "조회기간은 최대 3개월까지 가능합니다")
        return paged([schedule(merchant_uid=f"s_{lo}")], total=1, page=1, next_=0)

    route = api.get("/subscribe/payments/schedule").mock(side_effect=handler)
    since = datetime(2026, 1, 1, tzinfo=KST)
    got = [s.merchant_uid for s in client.iter_schedules(since, since + timedelta(days=90))]
    windows = [
        (int(c.request.url.params["schedule_from"]), int(c.request.url.params["schedule_to"]))
        for c in route.calls
    ]
    assert windows[0][1] - windows[0][0] == 90 * 86400  # first the whole window, refused
    served = [w for w in windows if w[1] - w[0] <= longest]
    assert served[0][0] == windows[0][0] and served[-1][1] == windows[0][1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(served))  # no gap
    assert len(got) == len(served) == 2


@pytest.mark.usefixtures("token_route")
def test_a_window_refused_for_another_reason_is_not_split_forever(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    route = api.get("/subscribe/payments/schedule").mock(return_value=fail(400, -1, "잘못된 요청"))
    since = datetime(2026, 1, 1, tzinfo=KST)
    with pytest.raises(BadRequestError):
        list(client.iter_schedules(since, since + timedelta(days=90)))
    assert route.call_count == 3  # 90 days, then its first 45-day half (<= 30 days is never split)


@pytest.mark.usefixtures("token_route")
def test_a_page_refused_past_a_shrunken_listing_relists_the_window(
    client: PortOneClient, api: respx.MockRouter
) -> None:
    state = {"first": True}
    items = [payment(imp_uid=f"imp_{i}") for i in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        limit = int(request.url.params["limit"])
        if state["first"]:  # 5 items say page 1; by page 3 two have left the listing
            if page >= 3:
                state["first"] = False
                return fail(400, -1, "page: 범위를 벗어났습니다")
            return paged(items[(page - 1) * limit : page * limit], total=5, page=page, next_=page + 1)
        rest = items[:3]
        return paged(
            rest[(page - 1) * limit : page * limit],
            total=3,
            page=page,
            next_=page + 1 if page * limit < 3 else 0,
        )

    api.get("/payments/status/paid").mock(side_effect=handler)
    since = datetime(2026, 1, 1, tzinfo=KST)
    got = [
        p.imp_uid for p in client.iter_payments_by_status("paid", since, since + timedelta(days=10), limit=2)
    ]
    assert set(got) == {"imp_0", "imp_1", "imp_2", "imp_3"}  # what was read, then the listing again
    assert got[-3:] == ["imp_0", "imp_1", "imp_2"]


@pytest.mark.usefixtures("token_route")
def test_billing_key_lookups_under_404_for_all(client: PortOneClient, api: respx.MockRouter) -> None:
    known = {"a": customer(customer_uid="a"), "b": customer(customer_uid="b")}

    def many(request: httpx.Request) -> httpx.Response:
        asked = request.url.params.get_list("customer_uid[]")
        if any(c not in known for c in asked):
            return fail(404, 1, "등록된 정보를 찾을 수 없습니다")
        return ok([known[c] for c in asked])

    def one(request: httpx.Request) -> httpx.Response:
        uid = request.url.path.rsplit("/", 1)[-1]
        if uid == "boom":
            return fail(500, -1, "내부 오류")
        return ok(known[uid]) if uid in known else fail(404, 1, "등록된 정보를 찾을 수 없습니다")

    api.get("/subscribe/customers").mock(side_effect=many)
    api.get(url__regex=r"/subscribe/customers/[^/]+$").mock(side_effect=one)
    result = client.fetch_billing_key_items(["a", "gone", "b"])
    assert sorted(i["customer_uid"] for i in result.found) == ["a", "b"]
    assert result.missing == ["gone"]
    probed = client.probe_billing_keys(["gone", "a"])
    assert probed.missing == ["gone"] and [i["customer_uid"] for i in probed.found] == ["a"]
    with pytest.raises(NotFoundError):
        client.fetch_billing_key_item("gone")
    client.settings  # noqa: B018 - the client stays usable
    with pytest.raises(ServerError):  # anything but 404 proves nothing: raised, never "deleted"
        PortOneClient(
            imp_key="k",
            imp_secret=SECRET,
            api_base=BASE,
            max_retries=0,
            sleep=lambda s: None,
            rng=random.Random(1),
        ).probe_billing_keys(["boom"])


@pytest.mark.usefixtures("token_route")
def test_payments_by_imp_uid_as_received(client: PortOneClient, api: respx.MockRouter) -> None:
    odd = payment(imp_uid="imp_2", amount=9.99, currency="USD", card_type="0")
    route = api.get("/payments").mock(return_value=ok([payment(imp_uid="imp_1"), odd], status=207))
    ids = [f"imp_{i}" for i in range(1, 151)]
    result = client.fetch_payment_items(ids)
    assert route.call_count == 2  # 100 per call
    assert result.found[1] == odd  # unparsed: the reader stores it exactly
    assert len(result.missing) == 148


def test_billing_key_record_reads_card_type_text_and_super_billing_keys() -> None:
    assert BillingKey.from_json(customer(card_type="1")).card_type == 1
    assert BillingKey.from_json(customer(card_type=None)).card_type is None
    sup = {
        "customer_uid": "s",
        "channelGroupId": "g",
        "succeededChannels": [
            {
                "pg_provider": "tosspayments",
                "pg_id": "M",
                "card_name": "현대카드",
                "card_type": 0,
                "inserted": 1_700_000_000,
                "updated": 1_700_000_100,
            }
        ],
        "failedChannels": [],
    }
    key = BillingKey.from_json(sup)
    assert (key.customer_uid, key.pg_provider, key.card_name, key.card_type) == (
        "s",
        "tosspayments",
        "현대카드",
        0,
    )
    assert key.raw == sup


@pytest.mark.usefixtures("token_route")
def test_schedules_by_merchant_uid_as_received(client: PortOneClient, api: respx.MockRouter) -> None:
    api.get("/subscribe/payments/schedule/s1").mock(return_value=ok(schedule(merchant_uid="s1", amount=9.99)))
    api.get("/subscribe/payments/schedule/s2").mock(return_value=fail(404, 1, "없음"))
    result = client.fetch_schedule_items(["s1", "s2", "s1"])
    assert [i["amount"] for i in result.found] == [9.99]
    assert result.missing == ["s2"]
