"""Faults on demand for the sandbox's HTTP surface.

Routes are matched with shell patterns (``fnmatch``) against ``"METHOD /actual/path"`` and against
``"METHOD /route/{template}"``, e.g. ``"GET /payments/status/*"``, ``"POST /subscribe/payments/schedule"``,
``"* /payments/*"`` or ``"*"`` for everything. Control requests (``/__sandbox/...``) never meet faults.

* latency per route (real seconds, through an injectable ``sleep``; it never moves the sandbox clock);
* error statuses (5xx, or 429 with ``Retry-After``) by a seeded rate or by a scripted sequence consumed
  one matching request at a time (``None`` in the script lets that request through);
* "apply the write but drop the response": the in-process transport raises ``httpx.ReadTimeout``, the
  loopback server closes the connection without answering;
* expiring the current token is :meth:`SandboxWorld.expire_token` (also ``{"expire_token": true}``
  in :meth:`Faults.configure`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from portone_recon.errors import SandboxError


def _matches(pattern: str, method: str, path: str, template: str) -> bool:
    if pattern in ("*", ""):
        return True
    return fnmatchcase(f"{method} {path}", pattern) or fnmatchcase(f"{method} {template}", pattern)


@dataclass
class ErrorRule:
    """Answer matching requests with ``status`` by ``rate`` or by the scripted ``sequence``."""

    route: str = "*"
    status: int = 503
    rate: float = 0.0
    sequence: list[int | None] | None = None
    retry_after: float | None = None
    remaining: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "route": self.route,
            "status": self.status,
            "rate": self.rate,
            "sequence": self.sequence,
            "retry_after": self.retry_after,
            "remaining": self.remaining,
        }


@dataclass
class DropRule:
    """Apply matching writes but drop their responses, ``times`` times (None: always)."""

    route: str = "POST *"
    times: int | None = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {"route": self.route, "times": self.times}


@dataclass(frozen=True)
class InjectedError:
    """What the HTTP layer answers instead of the real response."""

    status: int
    retry_after: float | None


@dataclass
class Faults:
    """The fault plan of one world (shared by its in-process transport and its loopback server)."""

    seed: int = 0
    sleep: Callable[[float], None] = time.sleep
    latency: dict[str, float] = field(default_factory=dict)
    errors: list[ErrorRule] = field(default_factory=list)
    drops: list[DropRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"faults:{self.seed}")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ configuration
    def add_latency(self, seconds: float, *, route: str = "*") -> Faults:
        """Delay matching requests by ``seconds`` of real time."""
        if seconds < 0:
            raise SandboxError(f"latency must be >= 0, got {seconds}")
        self.latency[route] = float(seconds)
        return self

    def fail_rate(
        self, status: int, rate: float, *, route: str = "*", retry_after: float | None = None
    ) -> Faults:
        """Answer ``status`` to a ``rate`` share of matching requests (429 gets ``Retry-After``)."""
        _check_status(status)
        if not 0.0 <= rate <= 1.0:
            raise SandboxError(f"fault rate must be within [0, 1], got {rate}")
        self.errors.append(
            ErrorRule(route=route, status=status, rate=rate, retry_after=_default_ra(status, retry_after))
        )
        return self

    def script(
        self, statuses: Sequence[int | None], *, route: str = "*", retry_after: float | None = None
    ) -> Faults:
        """Answer the next matching requests with ``statuses`` in order (``None`` = answer normally)."""
        for s in statuses:
            if s is not None:
                _check_status(s)
        first = next((s for s in statuses if s is not None), 503)
        self.errors.append(
            ErrorRule(
                route=route,
                status=first,
                sequence=list(statuses),
                retry_after=_default_ra(first, retry_after),
            )
        )
        return self

    def drop_response(self, *, route: str = "POST *", times: int | None = 1) -> Faults:
        """Apply matching writes but drop the response (the caller meets an unknown outcome)."""
        self.drops.append(DropRule(route=route, times=times))
        return self

    def clear(self) -> Faults:
        """Remove every fault."""
        with self._lock:
            self.latency.clear()
            self.errors.clear()
            self.drops.clear()
        return self

    def configure(self, spec: Mapping[str, Any], *, world: Any = None) -> Faults:
        """Apply a JSON fault spec (the body of ``POST /__sandbox/faults``).

        Keys: ``clear`` (bool, first), ``latency`` ({route: seconds}), ``errors`` ([{route, status, rate |
        sequence, retry_after}]), ``drop_response`` ([{route, times}]), ``expire_token`` (bool).
        """
        if not isinstance(spec, Mapping):
            raise SandboxError("fault spec must be a JSON object")
        unknown = set(spec) - {"clear", "latency", "errors", "drop_response", "expire_token"}
        if unknown:
            raise SandboxError(f"unknown fault keys: {sorted(unknown)}")
        if spec.get("clear"):
            self.clear()
        for route, seconds in dict(spec.get("latency") or {}).items():
            self.add_latency(float(seconds), route=str(route))
        for rule in spec.get("errors") or []:
            route = str(rule.get("route", "*"))
            ra = rule.get("retry_after")
            if rule.get("sequence") is not None:
                self.script(list(rule["sequence"]), route=route, retry_after=ra)
            else:
                self.fail_rate(
                    int(rule.get("status", 503)), float(rule.get("rate", 1.0)), route=route, retry_after=ra
                )
        for rule in spec.get("drop_response") or []:
            self.drop_response(route=str(rule.get("route", "POST *")), times=rule.get("times", 1))
        if spec.get("expire_token"):
            if world is None:
                raise SandboxError("expire_token needs the world")
            world.expire_token()
        return self

    def to_dict(self) -> dict[str, Any]:
        """The current plan as JSON-ready data."""
        return {
            "latency": dict(self.latency),
            "errors": [r.to_dict() for r in self.errors],
            "drop_response": [r.to_dict() for r in self.drops],
        }

    # ------------------------------------------------------------------ used by the HTTP layer
    def delay(self, method: str, path: str, template: str) -> None:
        """Sleep the largest latency configured for this request (outside any lock)."""
        if not self.latency:
            return
        seconds = max(
            (s for r, s in self.latency.items() if _matches(r, method, path, template)), default=0.0
        )
        if seconds > 0:
            self.sleep(seconds)

    def error_for(self, method: str, path: str, template: str) -> InjectedError | None:
        """The injected error for this request, if any (consumes scripted entries)."""
        if not self.errors:
            return None
        with self._lock:
            for rule in self.errors:
                if not _matches(rule.route, method, path, template):
                    continue
                if rule.sequence is not None:
                    if not rule.sequence:
                        continue
                    status = rule.sequence.pop(0)
                    if status is None:
                        return None
                    return InjectedError(status, _default_ra(status, rule.retry_after))
                if rule.rate > 0 and self._rng.random() < rule.rate:
                    return InjectedError(rule.status, rule.retry_after)
            return None

    def should_drop(self, method: str, path: str, template: str) -> bool:
        """Whether to drop this (already applied) write's response."""
        if not self.drops or method == "GET":
            return False
        with self._lock:
            for rule in self.drops:
                if rule.times is not None and rule.times <= 0:
                    continue
                if _matches(rule.route, method, path, template):
                    if rule.times is not None:
                        rule.times -= 1
                    return True
            return False


def _check_status(status: int) -> None:
    if not (status == 429 or 500 <= status <= 599 or status in (400, 401, 404)):
        raise SandboxError(f"injected status must be 429, 5xx, 400, 401 or 404, got {status}")


def _default_ra(status: int, retry_after: float | None) -> float | None:
    if status == 429 and retry_after is None:
        return 1.0
    return retry_after
