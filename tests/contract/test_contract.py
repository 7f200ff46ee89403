"""Every request the client builds and every sandbox answer conform to PortOne's published V1 schema.

The facts (paths, parameter names and locations, required fields, types, enums) come from
``portone_v1_schema.json``, derived from PortOne's OpenAPI document by ``derive_schema.py`` and committed
here, so the test never needs the reference itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon._time import KST
from portone_recon.api import PortOneClient
from portone_recon.errors import NotFoundError
from portone_recon.sandbox import CardBehaviour, SandboxWorld
from portone_recon.store import Store
from portone_recon.sync import sync

SCHEMA = json.loads((Path(__file__).parent / "portone_v1_schema.json").read_text(encoding="utf-8"))
START = datetime(2025, 1, 1, 9, 0, tzinfo=KST)


class Recorder(httpx.BaseTransport):
    """Keeps every request and its answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def _templates() -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path regex, endpoint key); an optional path parameter may be left out."""
    out = []
    for key, entry in SCHEMA["endpoints"].items():
        method, path = key.split(" ", 1)
        rx = re.escape(path)
        for name, p in entry["parameters"].items():
            if p["in"] != "path":
                continue
            token = re.escape("/{" + name + "}")
            group = f"(?P<{name}>[^/]+)"  # path parameter names are identifiers
            rx = rx.replace(token, f"/{group}" if p["required"] else f"(?:/{group})?")
        out.append((method.upper(), re.compile(f"^{rx}$"), key))
    return out


TEMPLATES = _templates()


def endpoint_of(method: str, path: str) -> str:
    matches = [key for m, rx, key in TEMPLATES if m == method and rx.match(path)]
    assert matches, f"{method} {path}: no such endpoint in PortOne's schema"
    # the most literal template wins (fewest parameters)
    return min(matches, key=lambda k: k.count("{"))


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    return True


def check_value(value: Any, shape: dict[str, Any], where: str) -> Iterator[str]:
    """Problems of ``value`` against a compact shape (null is accepted where a field exists)."""
    if value is None:
        return
    if "ref" in shape:
        yield from check_object(value, shape["ref"], where)
    elif "array" in shape:
        if not isinstance(value, list):
            yield f"{where}: expected an array, got {type(value).__name__}"
            return
        for i, item in enumerate(value):
            yield from check_value(item, shape["array"], f"{where}[{i}]")
    else:
        if not _type_ok(value, shape["type"]):
            yield f"{where}: expected {shape['type']}, got {type(value).__name__} {value!r:.40}"
        elif "enum" in shape and value not in shape["enum"]:
            yield f"{where}: {value!r} not in {shape['enum']}"


def check_object(value: Any, name: str, where: str) -> Iterator[str]:
    spec = SCHEMA["objects"][name]
    if not isinstance(value, dict):
        yield f"{where}: expected a {name} object, got {type(value).__name__}"
        return
    for field in spec["required"]:
        if field not in value:
            yield f"{where}.{field}: required by {name}, missing"
    for field, item in value.items():
        if field not in spec["properties"]:
            yield f"{where}.{field}: not a field of {name}"
            continue
        yield from check_value(item, spec["properties"][field], f"{where}.{field}")


def check_response(body: Any, shape: dict[str, Any], where: str) -> Iterator[str]:
    if "oneof" in shape:
        tries = [list(check_response(body, s, where)) for s in shape["oneof"]]
        if all(tries):
            yield from min(tries, key=len)
        return
    if "paged" in shape:
        if not isinstance(body, dict):
            yield f"{where}: expected a paged listing, got {type(body).__name__}"
            return
        for field in ("total", "previous", "next"):
            if not _type_ok(body.get(field), "integer"):
                yield f"{where}.{field}: expected integer, got {body.get(field)!r}"
        yield from check_value(body.get("list"), {"array": {"ref": shape["paged"]}}, f"{where}.list")
        return
    yield from check_value(body, shape, where)


def check_request(request: httpx.Request) -> list[str]:
    key = endpoint_of(request.method, request.url.path)
    params = SCHEMA["endpoints"][key]["parameters"]
    problems = []
    query = [(k, v) for k, v in request.url.params.multi_items()]
    for name, value in query:
        p = params.get(name)
        if p is None or p["in"] != "query":
            problems.append(f"{key}: query parameter {name!r} is not in the schema")
            continue
        if p["type"] == "integer" and not re.fullmatch(r"-?\d+", value):
            problems.append(f"{key}: {name}={value!r} is not an integer")
        if "enum" in p and value not in p["enum"]:
            problems.append(f"{key}: {name}={value!r} not in {p['enum']}")
    sent = {k for k, _ in query}
    for name, p in params.items():
        if p["in"] == "query" and p["required"] and name not in sent:
            problems.append(f"{key}: required query parameter {name!r} not sent")
    if request.content:
        body = json.loads(request.content)
        for name in body:
            p = params.get(name)
            if p is None or p["in"] not in ("formData", "body"):
                problems.append(f"{key}: body field {name!r} is not in the schema")
    match = next(rx.match(request.url.path) for m, rx, k in TEMPLATES if k == key)
    assert match is not None
    for name, p in params.items():
        value = match.groupdict().get(name) if p["in"] == "path" else None
        if value is not None and "enum" in p and value not in p["enum"]:
            problems.append(f"{key}: path {name}={value!r} not in {p['enum']}")
    return problems


def check_answer(request: httpx.Request, response: httpx.Response) -> list[str]:
    if not 200 <= response.status_code < 300:
        return []
    key = endpoint_of(request.method, request.url.path)
    envelope = response.json()
    shape = SCHEMA["endpoints"][key]["response"]
    assert shape is not None, key
    return [f"{key}: {p}" for p in check_response(envelope.get("response"), shape, "response")]


@pytest.fixture(scope="module")
def exchanges(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[httpx.Request, httpx.Response]]:
    """A merchant's life through the client: sync, lookups, bookings, charges, refunds, deletions."""
    w = SandboxWorld(start=START, seed=3)
    for i in range(6):
        cu = f"cust_{i}"
        w.issue_billing_key(cu, behaviour=CardBehaviour.decline() if i == 5 else None)
        w.create_schedules(
            cu,
            [
                {
                    "merchant_uid": f"sub_{cu}_{m}",
                    "schedule_at": int((START + timedelta(days=30 * m + 3)).timestamp()),
                    "amount": 8900,
                    "name": "월간 구독",
                }
                for m in range(5)
            ],
        )
    w.advance(to=START + timedelta(days=70))
    paid = sorted(i for i, p in w.payments.items() if p["status"] == "paid")
    w.cancel_payment(imp_uid=paid[0], amount=1000, reason="부분 환불")
    recorder = Recorder(w.transport())
    store = Store(tmp_path_factory.mktemp("contract") / "c.duckdb")
    with PortOneClient(
        imp_key=w.imp_key,
        imp_secret=w.imp_secret,
        api_base="https://sandbox.invalid",
        transport=recorder,
        sleep=lambda s: None,
    ) as client:
        sync(client, store, progress=False)
        sync(client, store, progress=False, full=True)
        one = client.fetch_payment(paid[1])
        client.fetch_payments(imp_uids=[paid[1], "imp_unknown"], merchant_uids=[one.merchant_uid])
        client.find_payment(one.merchant_uid)
        client.find_payment(one.merchant_uid, "paid", sorting="-paid")
        list(client.iter_payments_by_merchant_uid(one.merchant_uid))
        list(client.iter_payments_by_status("all", START, START + timedelta(days=60), sorting="-updated"))
        client.fetch_billing_key("cust_0")
        client.fetch_billing_key_item("cust_0")
        client.fetch_billing_keys(["cust_0", "cust_1", "nobody"])
        list(client.iter_billing_key_payments("cust_0"))
        list(client.iter_billing_key_schedules("cust_0", START, START + timedelta(days=200)))
        list(client.iter_customer_schedules("cust_1", START, START + timedelta(days=200), status="scheduled"))
        client.fetch_schedule("sub_cust_0_4")
        client.update_schedule("sub_cust_0_4", START + timedelta(days=130))
        client.unschedule(customer_uid="cust_1", merchant_uids=["sub_cust_1_4"])
        client.create_schedules(
            "cust_2",
            [
                {
                    "merchant_uid": "extra_1",
                    "schedule_at": START + timedelta(days=100),
                    "amount": 1100,
                    "name": "추가",
                }
            ],
        )
        client.pay_again(customer_uid="cust_3", merchant_uid="addon_1", amount=3300, name="추가 구매")
        client.cancel_payment(merchant_uid="addon_1", amount=300, reason="부분 환불", checksum=3300)
        client.issue_billing_key("cust_9", card_number="5361-4800-0000-0002", expiry="2030-12")
        failed = sorted(m for m, s in w.schedules.items() if s["payment_status"] == "failed")
        client.retry_schedule(failed[0])
        client.reschedule(failed[1], START + timedelta(days=90))
        client.unschedule(customer_uid="cust_4")
        client.delete_billing_key("cust_4", reason="해지")
        with pytest.raises(NotFoundError):
            client.fetch_billing_key_item("cust_4")
    return recorder.exchanges


def test_every_request_uses_the_schemas_paths_and_parameters(
    exchanges: list[tuple[httpx.Request, httpx.Response]],
) -> None:
    problems = [p for req, _ in exchanges for p in check_request(req)]
    assert problems == []
    called = {endpoint_of(req.method, req.url.path) for req, _ in exchanges}
    assert set(SCHEMA["endpoints"]) - called == set()  # every endpoint the client knows was exercised


def test_every_answer_has_the_schemas_fields_types_and_enums(
    exchanges: list[tuple[httpx.Request, httpx.Response]],
) -> None:
    answered = [(q, r) for q, r in exchanges if 200 <= r.status_code < 300]
    assert len(answered) > 50
    problems = [p for q, r in answered for p in check_answer(q, r)]
    assert problems == []


def test_the_checks_catch_what_they_are_for() -> None:
    # a field of the wrong type, an unknown field, a missing required field, a bad parameter
    payment = {
        "imp_uid": "imp_1",
        "merchant_uid": "m",
        "amount": "8900",
        "cancel_amount": 0,
        "currency": "KRW",
        "status": "paid",
        "sandbox": False,
        "nonsense": 1,
    }
    found = list(check_object(payment, "PaymentAnnotation", "response"))
    assert any("response.amount: expected number" in p for p in found)
    assert any("response.nonsense: not a field" in p for p in found)
    del payment["sandbox"]
    assert any("sandbox: required" in p for p in check_object(payment, "PaymentAnnotation", "response"))
    bad = httpx.Request("GET", "https://x/payments/status/paid", params={"from": "1", "to": "2", "size": "5"})
    assert check_request(bad) == [
        "get /payments/status/{payment_status}: query parameter 'size' is not in the schema"
    ]
    bad = httpx.Request("GET", "https://x/payments/status/paid", params={"sorting": "newest"})
    assert any("not in" in p for p in check_request(bad))
    bad = httpx.Request("GET", "https://x/subscribe/payments/schedule", params={"schedule_from": "1"})
    assert any("schedule_to" in p for p in check_request(bad))
    bad = httpx.Request("GET", "https://x/payments/status/refunded")
    assert check_request(bad) == [
        "get /payments/status/{payment_status}: path payment_status='refunded' not in "
        "['all', 'ready', 'paid', 'cancelled', 'failed']"
    ]
