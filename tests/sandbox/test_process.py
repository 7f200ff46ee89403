from __future__ import annotations

import httpx
import pytest

from portone_recon.errors import SandboxError
from portone_recon.sandbox.process import serve_in_subprocess


def test_serves_until_the_block_ends() -> None:
    with serve_in_subprocess("--seed", "1") as info:
        assert info["base_url"].startswith("http://127.0.0.1:")
        body = {"imp_key": info["imp_key"], "imp_secret": info["imp_secret"]}
        answer = httpx.post(info["base_url"] + "/users/getToken", json=body, timeout=10).json()
        assert answer["code"] == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(info["base_url"] + "/__sandbox/state", timeout=2)


def test_a_server_that_cannot_start_says_why() -> None:
    with pytest.raises(SandboxError, match="give both --subscribers and --months"):
        with serve_in_subprocess("--subscribers", "5"):
            pass
