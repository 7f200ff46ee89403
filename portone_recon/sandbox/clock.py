"""The sandbox clock: simulated time that only the caller moves (never the wall clock)."""

from __future__ import annotations

from datetime import datetime

from portone_recon._time import KST, from_unix


class SandboxClock:
    """A settable clock in whole unix seconds, shown in Asia/Seoul.

    Args:
        start: the initial instant (timezone-aware; a naive value is refused).
    """

    __slots__ = ("_now",)

    def __init__(self, start: datetime) -> None:
        self._now = self._check(start)

    @staticmethod
    def _check(value: datetime) -> int:
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone (the sandbox clock is absolute)")
        return int(value.timestamp())

    @property
    def now(self) -> datetime:
        """The current simulated instant (aware, Asia/Seoul)."""
        result = from_unix(self._now)
        assert result is not None  # the sandbox never runs at the epoch
        return result

    @property
    def now_unix(self) -> int:
        """The current simulated instant in unix seconds."""
        return self._now

    def set(self, to: datetime) -> None:
        """Move the clock to ``to`` (forwards or backwards; the world only ever moves it forwards)."""
        self._now = self._check(to)

    def set_unix(self, to: int) -> None:
        """Move the clock to unix second ``to``."""
        self._now = int(to)

    def tick(self, seconds: float) -> None:
        """Move the clock forwards by ``seconds`` (rounded down to whole seconds)."""
        if seconds < 0:
            raise ValueError(f"cannot move the clock backwards by {seconds} s")
        self._now += int(seconds)

    def __repr__(self) -> str:
        return f"SandboxClock({self.now.isoformat()})"


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """Shorthand for an Asia/Seoul instant (handy in tests and notebooks)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=KST)


__all__ = ["SandboxClock", "kst"]
