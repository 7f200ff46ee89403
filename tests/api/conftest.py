"""Fixtures for the API client tests: a strict respx router, a client that never sleeps."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

sys.path.insert(0, str(Path(__file__).parent))

from portone_api_helpers import BASE, SECRET, FakeClock, token_response

from portone_recon.api import PortOneClient


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """Strict respx router: every route must be called and every request must be mocked."""
    with respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def token_route(api: respx.MockRouter) -> respx.Route:
    return api.post("/users/getToken").mock(return_value=token_response())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float], clock: FakeClock) -> Iterator[PortOneClient]:
    c = PortOneClient(
        imp_key="imp_apikey",
        imp_secret=SECRET,
        api_base=BASE,
        sleep=sleeps.append,
        rng=random.Random(7),
        clock=clock,
    )
    yield c
    c.close()
