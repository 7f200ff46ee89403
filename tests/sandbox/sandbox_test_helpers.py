"""Helpers for the sandbox tests: a world at a fixed instant and a plain httpx client on it."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import httpx
import pytest

from portone_recon.sandbox import SandboxWorld, kst

START = kst(2026, 1, 1, 9)
BASE = "https://api.iamport.kr"


@pytest.fixture
def world() -> SandboxWorld:
    return SandboxWorld(start=START, seed=7)


class TokenAuth(httpx.Auth):
    """Sends the sandbox token (Bearer or bare); on a 401 fetches a fresh one and retries once."""

    def __init__(self, world: SandboxWorld, *, bearer: bool = True) -> None:
        self.world = world
        self.bearer = bearer
        self.token = ""

    def _fetch(self) -> Iterator[httpx.Request]:
        # straight to the world: token requests are not what these tests count
        self.token = self.world.issue_token(self.world.imp_key, self.world.imp_secret)["access_token"]
        return iter(())

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.token:
            self._fetch()
        request.headers["Authorization"] = f"Bearer {self.token}" if self.bearer else self.token
        response = yield request
        if response.status_code == 401:
            self._fetch()
            request.headers["Authorization"] = f"Bearer {self.token}" if self.bearer else self.token
            yield request


def authed(world: SandboxWorld, *, bearer: bool = True) -> httpx.Client:
    """A plain httpx client on the in-process transport that sends a valid token."""
    return httpx.Client(transport=world.transport(), base_url=BASE, auth=TokenAuth(world, bearer=bearer))


@pytest.fixture
def http(world: SandboxWorld) -> Iterator[httpx.Client]:
    with authed(world) as client:
        yield client


def schedule_entry(mu: str, at: int, amount: int = 8900, **extra: object) -> dict[str, object]:
    return {"merchant_uid": mu, "schedule_at": at, "amount": amount, "name": "월간 구독", **extra}
