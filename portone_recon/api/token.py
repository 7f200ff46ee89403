"""The access-token cache: one token shared by every thread, refreshed shortly before it expires.

The token is fetched once (one lock, double-checked) and kept until ``TOKEN_REFRESH_MARGIN`` seconds
before it expires by PortOne's own clock (``expired_at - now``, measured on this machine's monotonic
clock from the moment it was asked for); a token a business call found stale (401) is replaced once.
The token's value never appears in a repr.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from portone_recon.api.models import Token

#: Refresh the token this many seconds (by PortOne's clock) before it expires.
TOKEN_REFRESH_MARGIN = 60.0


class _CachedToken:
    """A token and the monotonic instant at which it must be refreshed. Never printed."""

    __slots__ = ("refresh_at", "value")

    def __init__(self, value: str, refresh_at: float) -> None:
        self.value = value
        self.refresh_at = refresh_at

    def __repr__(self) -> str:
        return f"_CachedToken(refresh_at={self.refresh_at:.0f})"


class TokenCache:
    """Hands out a valid access token; ``fetch`` asks PortOne for a new one (``POST /users/getToken``).

    Args:
        fetch: sends the token request and returns the parsed :class:`Token`.
        clock: monotonic clock (seconds).
    """

    def __init__(self, fetch: Callable[[], Token], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: _CachedToken | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache({self._token!r})"

    def _valid(self, stale: str | None) -> str | None:
        tok = self._token
        if tok is not None and tok.value != stale and self._clock() < tok.refresh_at:
            return tok.value
        return None

    def get(self, stale: str | None = None) -> str:
        """The cached token, fetching one when absent, near expiry, or equal to ``stale`` (it got a 401)."""
        value = self._valid(stale)
        if value is not None:
            return value
        with self._lock:
            value = self._valid(stale)
            if value is not None:
                return value
            return self._refresh().access_token

    def refresh(self) -> Token:
        """Fetch a new token now (it is kept) and return it with PortOne's ``now``."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> Token:
        """Fetch a token and cache it until shortly before ``expired_at - now``; hold the lock."""
        started = self._clock()
        token = self._fetch()
        lifetime = float(token.lifetime)
        margin = min(TOKEN_REFRESH_MARGIN, lifetime / 2.0)
        self._token = _CachedToken(token.access_token, started + lifetime - margin)
        return token
