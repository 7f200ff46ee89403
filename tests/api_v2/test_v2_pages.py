"""V2 listing pages: PortOne's layout is read without decoding the items, any other layout is decoded and
checked, and both give the same page."""

from __future__ import annotations

import orjson
import pytest

from portone_recon.api.v2.paging import V2Page
from portone_recon.errors import MalformedResponseError

ITEMS = [{"id": f"p{i}", "note": '줄\n바꿈 "q"'} for i in range(3)]


def test_portone_layout_is_read_from_its_header_without_decoding() -> None:
    body = orjson.dumps({"items": ITEMS, "page": {"number": 1, "size": 3, "totalCount": 8}})
    page = V2Page.read("/payments", body)
    assert (page.count, page.total) == (3, 8)
    assert page.items == ITEMS and page.body is body
    # Nothing between the header and the tail is decoded on reading: a broken item shows only when the
    # items are asked for (the sync's SQL reader checks them where it reads them).
    broken = body.replace(b'"id":"p1"', b'"id":p1')
    page = V2Page.read("/payments", broken)
    assert (page.count, page.total, page.body) == (3, 8, broken)
    with pytest.raises(MalformedResponseError):
        _ = page.items


def test_last_and_empty_pages() -> None:
    last = V2Page.read(
        "/payments", orjson.dumps({"items": ITEMS[:2], "page": {"number": 2, "size": 3, "totalCount": 8}})
    )
    assert (last.count, last.total, last.items) == (2, 8, ITEMS[:2])
    empty = V2Page.read("/payments", b'{"items": [], "page": {"number": 0, "size": 3, "totalCount": 0}}')
    assert (empty.count, empty.total, empty.items) == (0, 0, [])


def test_another_layout_is_decoded_and_gives_the_same_page() -> None:
    body = orjson.dumps({"page": {"totalCount": 8, "size": 3, "number": 1}, "items": ITEMS, "extra": 1})
    page = V2Page.read("/payments", body)
    assert (page.count, page.total, page.items) == (3, 8, ITEMS)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", None),
        (b'{"items": {}, "page": {"totalCount": 1}}', "items"),
        (b'{"items": [], "page": {"totalCount": "1"}}', "page.totalCount"),
        (b"[1]", None),
    ],
)
def test_a_malformed_page_names_what_is_wrong(body: bytes, field: str | None) -> None:
    with pytest.raises(MalformedResponseError) as err:
        V2Page.read("/payments", body)
    assert err.value.endpoint == "/payments"
    if field:
        assert err.value.field == field
