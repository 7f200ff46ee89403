"""Settings: the only reader of ``PORTONE_*`` environment variables.

Build one :class:`Settings` with :meth:`Settings.from_env` and pass it explicitly; there are no
module-level globals. The secret is wrapped in :class:`Secret`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from portone_recon.errors import ConfigError

DEFAULT_API_BASE = "https://api.iamport.kr"
DEFAULT_DB = "portone_recon.duckdb"
TOML_FILE = "portone_recon.toml"


class Secret:
    """A string that does not print itself. Call :meth:`reveal` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # pickling would be a way out: refuse it
        raise TypeError("Secret values are not picklable")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, in one frozen object.

    Attributes:
        imp_key: PortOne V1 REST API key (not secret on its own).
        imp_secret: PortOne V1 REST API secret.
        api_base: base URL, ``https://api.iamport.kr`` unless pointed at a sandbox.
        db_path: the DuckDB file.
        connect_timeout / read_timeout: seconds, per HTTP request.
        concurrency: pages fetched in flight at once by listings (default 4).
        max_retries: retries of an idempotent request before giving up.
        lock_timeout: seconds to wait for another process to release the DuckDB file.
        tier: agency accounts' sub-merchant tier code, sent as the ``Tier`` header on every request
            when set (empty: the account's own data).
    """

    imp_key: str = ""
    imp_secret: Secret = field(default_factory=lambda: Secret(""))
    api_base: str = DEFAULT_API_BASE
    db_path: Path = Path(DEFAULT_DB)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    concurrency: int = 4
    max_retries: int = 4
    lock_timeout: float = 30.0
    tier: str = ""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("connect_timeout", "read_timeout", "lock_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.api_base.startswith(("http://", "https://")):
            raise ConfigError(f"PORTONE_API_BASE must be an http(s) URL, got {self.api_base!r}")
        if self.tier != self.tier.strip() or any(not c.isprintable() for c in self.tier):
            raise ConfigError(f"PORTONE_TIER must be a tier code without spaces around it, got {self.tier!r}")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        toml_path: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Read settings from ``portone_recon.toml`` (if present), then the environment, then overrides.

        Variables: ``PORTONE_IMP_KEY``, ``PORTONE_IMP_SECRET``, ``PORTONE_API_BASE``,
        ``PORTONE_RECON_DB``, ``PORTONE_CONNECT_TIMEOUT``, ``PORTONE_READ_TIMEOUT``,
        ``PORTONE_CONCURRENCY``, ``PORTONE_MAX_RETRIES``, ``PORTONE_LOCK_TIMEOUT``, ``PORTONE_TIER``.
        The TOML file may hold everything but the secret.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = Path(toml_path) if toml_path is not None else Path(TOML_FILE)
        if path.is_file():
            values.update(_read_toml(path))
        pairs = {
            "PORTONE_IMP_KEY": "imp_key",
            "PORTONE_IMP_SECRET": "imp_secret",
            "PORTONE_API_BASE": "api_base",
            "PORTONE_RECON_DB": "db_path",
            "PORTONE_CONNECT_TIMEOUT": "connect_timeout",
            "PORTONE_READ_TIMEOUT": "read_timeout",
            "PORTONE_CONCURRENCY": "concurrency",
            "PORTONE_MAX_RETRIES": "max_retries",
            "PORTONE_LOCK_TIMEOUT": "lock_timeout",
            "PORTONE_TIER": "tier",
        }
        for var, name in pairs.items():
            raw = env.get(var)
            if raw is not None and raw != "":
                values[name] = _convert(var, name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("imp_secret"), str):
            values["imp_secret"] = Secret(values["imp_secret"])
        if "db_path" in values:
            values["db_path"] = Path(values["db_path"])
        if "api_base" in values:
            values["api_base"] = str(values["api_base"]).rstrip("/")
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        if isinstance(changes.get("imp_secret"), str):
            changes["imp_secret"] = Secret(changes["imp_secret"])
        return replace(self, **changes)

    def require_credentials(self) -> None:
        """Raise :class:`ConfigError` naming what is missing for API calls."""
        missing = [
            var
            for var, ok in (("PORTONE_IMP_KEY", self.imp_key), ("PORTONE_IMP_SECRET", self.imp_secret))
            if not ok
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: export them (the secret belongs in the "
                "environment or a secrets manager, never in a notebook or a TOML file)"
            )


_INT_FIELDS = {"concurrency", "max_retries"}
_FLOAT_FIELDS = {"connect_timeout", "read_timeout", "lock_timeout"}


def _convert(var: str, name: str, raw: str) -> Any:
    try:
        if name in _INT_FIELDS:
            return int(raw)
        if name in _FLOAT_FIELDS:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a number, got {raw!r}") from None
    return raw


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    table = data.get("portone_recon", data)
    if "imp_secret" in table:
        raise ConfigError(f"{path}: imp_secret does not belong in a file; use PORTONE_IMP_SECRET")
    allowed = set(Settings.__dataclass_fields__) - {"imp_secret"}
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return dict(table)
