"""Listing pages read without decoding their items: the envelope fast path and lazy RawPage.items."""

from __future__ import annotations

import json

import orjson
import pytest

from portone_recon.api.envelope import RawPage, fast_page_header
from portone_recon.errors import BusinessError, MalformedResponseError

ITEMS = [
    {"imp_uid": "imp_1", "merchant_uid": "m_1", "name": 'say "hi" \\ 안녕', "amount": 8900},
    {"imp_uid": "imp_2", "merchant_uid": "m_2", "custom_data": '{"imp_uid":"not a key"}', "amount": 1},
]


def body(
    items: list[object] = ITEMS, *, code: int = 0, message: str | None = None, spaced: bool = False
) -> bytes:
    doc = {
        "code": code,
        "message": message,
        "response": {"total": 7, "previous": 1, "next": 3, "list": items},
    }
    if spaced:  # Python's json: spaces after ':' and ','
        return json.dumps(doc, ensure_ascii=False).encode()
    return orjson.dumps(doc)


@pytest.mark.parametrize("spaced", [False, True])
def test_header_and_keys_are_read_without_decoding(spaced: bool) -> None:
    head = fast_page_header(body(spaced=spaced), b"imp_uid")
    # custom_data holds the text "imp_uid" inside a string: its quotes are escaped, so it is not a key
    assert head == (7, 1, 3, ("imp_1", "imp_2"))
    assert fast_page_header(body(spaced=spaced), b"merchant_uid") == (7, 1, 3, ("m_1", "m_2"))
    assert fast_page_header(body([]), b"imp_uid") == (7, 1, 3, ())
    assert fast_page_header(body(message='ok "quoted"'), b"imp_uid") is not None


@pytest.mark.parametrize(
    "raw",
    [
        body(code=1),  # a refusal: decoded and raised the usual way
        b'{"message":null,"code":0,"response":{"total":1,"previous":0,"next":0,"list":[]}}',  # other order
        b'{"code":0,"message":null,"response":{"list":[],"total":0,"previous":0,"next":0}}',
        b'{"code":0,"message":null,"response":{"total":1,"previous":0,"next":0,"list":[]},"extra":[1]}',
        b'{"code":0,"message":null,"response":{"total":1,"previous":0,"next":0,"list":[{"a":1}',  # cut short
        b"not json at all",
    ],
)
def test_any_other_layout_falls_back_to_a_full_decode(raw: bytes) -> None:
    assert fast_page_header(raw, b"imp_uid") is None


def test_lazy_items_decode_on_first_access_and_repr_does_not() -> None:
    raw = body()
    head = fast_page_header(raw, b"imp_uid")
    assert head is not None
    page = RawPage(
        endpoint="/payments/status/{payment_status}", params=(), total=7, next=3, keys=head[3], body=raw
    )
    assert page.count == 2
    assert (
        repr(page)
        == "RawPage(endpoint='/payments/status/{payment_status}', page=1, items=2, total=7, next=3)"
    )
    assert page._items is None  # repr did not decode
    assert page.items == ITEMS
    with pytest.raises(ValueError, match="decoded items or the keys"):
        RawPage(endpoint="/x", params=(), total=0, next=0)


def test_lazy_items_of_a_bad_body_raise_naming_the_endpoint() -> None:
    bad = b'{"code":0,"message":null,"response":{"total":1,"previous":0,"next":0,"list":{"x":1}}}'
    page = RawPage(
        endpoint="/payments/status/{payment_status}", params=(), total=1, next=0, keys=(), body=bad
    )
    with pytest.raises(MalformedResponseError) as info:
        _ = page.items
    assert info.value.field == "response.list"
    assert info.value.endpoint == "/payments/status/{payment_status}"
    refused = RawPage(endpoint="/e", params=(), total=0, next=0, keys=(), body=body(code=-1, message="no"))
    with pytest.raises(BusinessError):
        _ = refused.items
