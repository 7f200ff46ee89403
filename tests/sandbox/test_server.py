"""The loopback server: same API over real sockets, the /__sandbox control surface, and `sandbox serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sandbox_test_helpers import schedule_entry

from portone_recon.sandbox import SandboxWorld
from portone_recon.sandbox.server import SandboxServer


@pytest.fixture
def served(world: SandboxWorld) -> Iterator[tuple[SandboxWorld, str]]:
    server = SandboxServer(world, port=0)
    server.start_background()
    try:
        yield world, server.base_url
    finally:
        server.stop()


def token(c: httpx.Client, world: SandboxWorld) -> str:
    r = c.post("/users/getToken", json={"imp_key": world.imp_key, "imp_secret": world.imp_secret})
    return str(r.json()["response"]["access_token"])


def test_api_and_control_over_loopback(served: tuple[SandboxWorld, str]) -> None:
    world, base = served
    assert base.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=base) as c:
        c.headers["Authorization"] = token(c, world)
        r = c.post(
            "/subscribe/customers/cus_1", json={"card_number": "4242424242424242", "expiry": "2030-12"}
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["response"]["customer_uid"] == "cus_1"
        r = c.post(
            "/subscribe/payments/schedule",
            json={"customer_uid": "cus_1", "schedules": [schedule_entry("m-1", world.now + 60)]},
        )
        assert r.json()["code"] == 0
        adv = c.post("/__sandbox/advance", json={"seconds": 120}).json()["response"]
        assert adv["now"] == world.now
        assert [h["body"]["merchant_uid"] for h in adv["webhooks"]] == ["m-1"]
        assert c.get("/payments/find/m-1").json()["response"]["status"] == "paid"
        assert c.get("/payments", params={"merchant_uid[]": ["m-1", "zzz"]}).status_code == 207
        outbox = c.get("/__sandbox/outbox").json()["response"]
        assert outbox[0]["body"]["status"] == "paid"
        log = c.get("/__sandbox/requests").json()["response"]
        assert [e["route"] for e in log][:2] == ["/users/getToken", "/subscribe/customers/{customer_uid}"]
        assert all(not e["path"].startswith("/__sandbox") for e in log)
        state = c.get("/__sandbox/state").json()["response"]
        assert state["payments"] == 1
        assert state["schedules_by_status"]["executed"] == 1
        to = c.post("/__sandbox/advance", json={"to": "2026-02-01T00:00:00+09:00"}).json()["response"]
        assert to["now"] == 1769871600
        assert c.post("/__sandbox/advance", json={}).status_code == 400
        assert c.get("/__sandbox/nothing").status_code == 404


def test_faults_over_loopback_and_dropped_connection(served: tuple[SandboxWorld, str]) -> None:
    world, base = served
    world.issue_billing_key("cus_2")
    with httpx.Client(base_url=base) as c:
        c.headers["Authorization"] = token(c, world)
        spec = {
            "errors": [{"route": "GET /payments/*", "sequence": [503]}],
            "drop_response": [{"route": "POST *"}],
        }
        assert c.post("/__sandbox/faults", json=spec).status_code == 200
        assert c.get("/payments/imp_000000000001").status_code == 503
        with pytest.raises(httpx.TransportError):  # the server closes the connection without answering
            c.post(
                "/subscribe/payments/again",
                json={"customer_uid": "cus_2", "merchant_uid": "x-1", "amount": 100, "name": "n"},
            )
        assert "x-1" in world.payment_ids_by_merchant_uid  # applied
        assert c.get("/payments/find/x-1").json()["response"]["status"] == "paid"
        c.post("/__sandbox/faults", json={"expire_token": True})
        assert c.get("/payments/find/x-1").status_code == 401


def test_form_encoded_bodies_with_arrays(served: tuple[SandboxWorld, str]) -> None:
    world, base = served
    world.issue_billing_key("cus_3")
    world.create_schedules(
        "cus_3", [schedule_entry("f-1", world.now + 60), schedule_entry("f-2", world.now + 60)]
    )
    with httpx.Client(base_url=base) as c:
        c.headers["Authorization"] = token(c, world)
        r = c.post(
            "/subscribe/payments/unschedule", data={"customer_uid": "cus_3", "merchant_uid[]": ["f-1", "f-2"]}
        )
        assert sorted(s["merchant_uid"] for s in r.json()["response"]) == ["f-1", "f-2"]


@pytest.mark.slow
def test_serve_command_prints_json_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    code = (
        "import argparse, sys\n"
        "from portone_recon.sandbox.commands import register\n"
        "p = argparse.ArgumentParser(); sub = p.add_subparsers(dest='command'); register(sub)\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "sandbox", "serve", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = orjson.loads(proc.stdout.readline())
        assert set(line) == {"base_url", "imp_key", "imp_secret"}
        with httpx.Client(base_url=line["base_url"]) as c:
            r = c.post("/users/getToken", json={"imp_key": line["imp_key"], "imp_secret": line["imp_secret"]})
            assert r.status_code == 200
            assert c.get("/__sandbox/state").json()["response"]["now_kst"] == "2026-11-27T06:00:00+09:00"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_builds_a_scenario_world_or_an_empty_one() -> None:
    import argparse

    from portone_recon.errors import SandboxError
    from portone_recon.sandbox.commands import build_world

    empty = build_world(argparse.Namespace(subscribers=None, months=None, seed=0, start="2025-01-01"))
    assert empty.clock.now.isoformat() == "2025-01-01T00:00:00+09:00"
    assert empty.payments == {}
    scenario = build_world(argparse.Namespace(subscribers=200, months=4, seed=1, start=None))
    assert isinstance(scenario, SandboxWorld)
    assert scenario.payments
    with pytest.raises(SandboxError):
        build_world(argparse.Namespace(subscribers=5, months=None, seed=0, start=None))
    with pytest.raises(SandboxError):
        build_world(argparse.Namespace(subscribers=None, months=None, seed=0, start="not a date"))


def test_warm_builds_the_listing_indexes_without_changing_answers() -> None:
    import argparse

    from portone_recon.sandbox.commands import build_world

    cold = build_world(argparse.Namespace(subscribers=50, months=3, seed=2, start=None))
    warm = build_world(argparse.Namespace(subscribers=50, months=3, seed=2, start=None))
    warm.warm()
    assert warm._pix is not None and warm._six is not None  # built before any request
    assert cold._pix is None
    now = int(cold.clock.now.timestamp())
    for status in ("paid", "failed", "ready", "cancelled"):
        assert warm.query_payments_by_status(status, 0, now) == cold.query_payments_by_status(status, 0, now)
