"""Run ``portone-recon sandbox serve`` as a bounded subprocess for the sync benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import REPO

#: payments per subscriber-month that generate_merchant produces (measured: 20,668 for 2,000 x 12)
PAYMENTS_PER_SUBSCRIBER_MONTH = 0.86


def subscribers_for(payments: int, months: int) -> int:
    """How many scenario subscribers give about ``payments`` payments over ``months``."""
    return max(10, round(payments / (months * PAYMENTS_PER_SUBSCRIBER_MONTH)))


class SandboxProcess:
    """``python -m portone_recon sandbox serve --port 0 ...`` killed on exit and after ``max_s`` seconds.

    Attributes:
        base_url / imp_key / imp_secret: from the JSON line the server prints when it is ready.
        build_s: seconds from start until ready (the scenario generation).
    """

    def __init__(
        self,
        *,
        subscribers: int,
        months: int,
        seed: int = 0,
        max_s: float = 1800,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "portone_recon",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--subscribers",
            str(subscribers),
            "--months",
            str(months),
            "--seed",
            str(seed),
            *extra,
        ]
        self.max_s = max_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._killer: threading.Timer | None = None
        self.base_url = self.imp_key = self.imp_secret = ""
        self.build_s = 0.0
        #: the whole ready line (``v2_base_url`` and ``v2_api_secret`` when serving V2 too)
        self.info: dict[str, Any] = {}

    def __enter__(self) -> SandboxProcess:
        t0 = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._killer = threading.Timer(self.max_s, self.kill)
        self._killer.daemon = True
        self._killer.start()
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.max_s)
        if not line or not line[0]:
            self.kill()
            err = self.proc.stderr.read().decode(errors="replace")[-3000:] if self.proc.stderr else ""
            raise SystemExit(f"sandbox serve did not start: {err}")
        info: dict[str, Any] = orjson.loads(line[0])
        self.info = info
        self.base_url, self.imp_key, self.imp_secret = info["base_url"], info["imp_key"], info["imp_secret"]
        self.build_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def kill(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self._killer is not None:
            self._killer.cancel()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (user + system)."""
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def control(self, method: str, name: str, body: Any = None) -> Any:
        """Call ``/__sandbox/<name>`` and return the envelope's ``response``."""
        r = httpx.request(method, f"{self.base_url}/__sandbox/{name}", json=body, timeout=600)
        r.raise_for_status()
        return orjson.loads(r.content)["response"]

    def set_latency(self, seconds: float) -> None:
        """Every API route answers after ``seconds`` (control routes never wait)."""
        self.control("POST", "faults", {"clear": True, "latency": {"*": seconds} if seconds else {}})

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    def requests(self) -> list[dict[str, Any]]:
        """The server's request log since the last :meth:`clear_requests`."""
        result: list[dict[str, Any]] = self.control("GET", "requests")
        return result

    def token(self) -> str:
        """A fresh access token (this invalidates the previous one)."""
        r = httpx.post(
            f"{self.base_url}/users/getToken",
            json={"imp_key": self.imp_key, "imp_secret": self.imp_secret},
            timeout=60,
        )
        r.raise_for_status()
        return str(orjson.loads(r.content)["response"]["access_token"])
