"""The api package's public surface, Jupyter friendliness and result objects."""

from __future__ import annotations

import asyncio

import pytest
import respx
from portone_api_helpers import PAYMENT, ok, payment

import portone_recon.api as api_pkg
from portone_recon.api import MultiResult, Payment, PortOneClient


def test_all_is_sorted_and_importable() -> None:
    assert api_pkg.__all__ == sorted(api_pkg.__all__)
    for name in api_pkg.__all__:
        assert getattr(api_pkg, name) is not None
    for required in ("PortOneClient", "RawPage", "Payment", "Schedule", "BillingKey", "MultiResult"):
        assert required in api_pkg.__all__


def test_api_package_does_not_import_duckdb_or_pandas() -> None:
    import ast
    from pathlib import Path

    folder = Path(api_pkg.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"duckdb", "pandas", "asyncio"}, (path.name, name)


@pytest.mark.usefixtures("token_route")
def test_client_works_while_an_event_loop_runs(client: PortOneClient, api: respx.MockRouter) -> None:
    # A notebook cell runs inside a running loop: the client must not need (or start) its own.
    api.get("/payments/imp_123456789012").mock(return_value=ok(PAYMENT))

    async def cell() -> str:
        return client.fetch_payment("imp_123456789012").imp_uid

    assert asyncio.run(cell()) == "imp_123456789012"


def test_multi_result_repr_dict_html() -> None:
    p = Payment.from_json(payment(imp_uid="imp_<b>"))
    result = MultiResult(found=[p], missing=["<script>", *[f"m{i}" for i in range(25)]])
    assert repr(result) == "MultiResult(found=1, missing=26)"
    assert result.to_dict()["found"][0]["imp_uid"] == "imp_<b>"
    assert result.to_dict()["missing"][0] == "<script>"
    html = result._repr_html_()
    assert "&lt;script&gt;" in html and "<script>" not in html and "and 6 more" in html
    assert list(result) == [p] and len(result) == 1
