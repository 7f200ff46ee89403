"""Settings: the only reader of ``PORTONE_*`` environment variables.

Build one :class:`Settings` with :meth:`Settings.from_env` and pass it explicitly; there are no
module-level globals. The secret is wrapped in :class:`Secret`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from portone_recon.errors import ConfigError

DEFAULT_API_BASE = "https://api.iamport.kr"
DEFAULT_V2_API_BASE = "https://api.portone.io"
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
        schedule_name: product name of the schedules fix-ups book when the subscription has none.
        schedule_hour: hour (Asia/Seoul, 0..23) of the schedules fix-ups book.
        notice_url: webhook URL of the schedules fix-ups book (empty: the merchant's default).
        api_secret: PortOne V2 API secret, sent only as ``Authorization: PortOne <secret>``.
        store_id: V2 store id (empty: the store of the credential).
        v2_api_base: V2 base URL, ``https://api.portone.io`` unless pointed at a sandbox.
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
    schedule_name: str = "정기결제"
    schedule_hour: int = 10
    notice_url: str = ""
    api_secret: Secret = field(default_factory=lambda: Secret(""))
    store_id: str = ""
    v2_api_base: str = DEFAULT_V2_API_BASE

    def __post_init__(self) -> None:
        for name in _SECRET_FIELDS:  # a plain string given directly is wrapped, never kept bare
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Secret(getattr(self, name)))
        for name in _CHECKED_FIELDS:
            problem = setting_problem(name, getattr(self, name))
            if problem:
                raise ConfigError(f"{name} {problem}")
        if not self.api_base.startswith(("http://", "https://")):
            raise ConfigError(f"PORTONE_API_BASE must be an http(s) URL, got {self.api_base!r}")
        if not self.v2_api_base.startswith(("http://", "https://")):
            raise ConfigError(f"PORTONE_V2_API_BASE must be an http(s) URL, got {self.v2_api_base!r}")
        if self.store_id != self.store_id.strip() or any(not c.isprintable() for c in self.store_id):
            raise ConfigError(f"PORTONE_STORE_ID must be a store id without spaces, got {self.store_id!r}")
        if not self.schedule_name.strip():
            raise ConfigError("PORTONE_RECON_SCHEDULE_NAME must not be empty")
        if self.notice_url and not self.notice_url.startswith(("http://", "https://")):
            raise ConfigError(f"PORTONE_NOTICE_URL must be an http(s) URL, got {self.notice_url!r}")
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
        ``PORTONE_CONCURRENCY``, ``PORTONE_MAX_RETRIES``, ``PORTONE_LOCK_TIMEOUT``, ``PORTONE_TIER``,
        ``PORTONE_RECON_SCHEDULE_NAME``, ``PORTONE_RECON_SCHEDULE_HOUR``, ``PORTONE_NOTICE_URL``; for V2
        ``PORTONE_API_SECRET``, ``PORTONE_STORE_ID``, ``PORTONE_V2_API_BASE``. The TOML
        file may hold everything but the secret, either at its top level or all inside one
        ``[portone_recon]`` table; a value of the wrong type, an unknown key or anything that looks like
        a secret is refused with the file and key named.
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
            "PORTONE_RECON_SCHEDULE_NAME": "schedule_name",
            "PORTONE_RECON_SCHEDULE_HOUR": "schedule_hour",
            "PORTONE_NOTICE_URL": "notice_url",
            "PORTONE_API_SECRET": "api_secret",
            "PORTONE_STORE_ID": "store_id",
            "PORTONE_V2_API_BASE": "v2_api_base",
        }
        for var, name in pairs.items():
            raw = env.get(var)
            if raw is not None and raw != "":
                values[name] = _convert(var, name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in _SECRET_FIELDS:
            if isinstance(values.get(name), str):
                values[name] = Secret(values[name])
        if isinstance(values.get("db_path"), str):
            values["db_path"] = Path(values["db_path"])
        for name in ("api_base", "v2_api_base"):
            if name in values:
                values[name] = str(values[name]).rstrip("/")
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        for name in _SECRET_FIELDS:
            if isinstance(changes.get(name), str):
                changes[name] = Secret(changes[name])
        return replace(self, **changes)

    @property
    def has_v1(self) -> bool:
        """Whether V1 credentials (key and secret) are set."""
        return bool(self.imp_key) and bool(self.imp_secret)

    @property
    def has_v2(self) -> bool:
        """Whether a V2 API secret is set."""
        return bool(self.api_secret)

    def require_v2_credentials(self) -> None:
        """Raise :class:`ConfigError` when the V2 API secret is missing."""
        if not self.api_secret:
            raise ConfigError(
                "PORTONE_API_SECRET not set: export the V2 API secret (it belongs in the environment or "
                "a secrets manager, never in a notebook or a TOML file)"
            )

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


_INT_FIELDS = {"concurrency", "max_retries", "schedule_hour"}
_FLOAT_FIELDS = {"connect_timeout", "read_timeout", "lock_timeout"}
_TEXT_FIELDS = {"imp_key", "api_base", "tier", "schedule_name", "notice_url", "store_id", "v2_api_base"}
#: Settings held as :class:`Secret`: never read from a file.
_SECRET_FIELDS = ("imp_secret", "api_secret")
_CHECKED_FIELDS = ("db_path", *sorted(_TEXT_FIELDS), *sorted(_INT_FIELDS), *sorted(_FLOAT_FIELDS))
#: Range of each integer setting.
_INT_MIN = {"concurrency": 1, "max_retries": 0, "schedule_hour": 0}
_INT_MAX = {"schedule_hour": 23}
#: Words that mark a TOML key as a secret, whatever table it sits in.
_SECRET_WORDS = ("secret", "password", "passwd", "token")


def seconds_problem(value: object) -> str | None:
    """Why ``value`` is not a usable number of seconds (a finite number > 0), or None when it is.

    NaN and infinity are refused: a deadline of ``now + nan`` is never reached, so a lock wait or a
    read timeout built from it would wait forever.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number of seconds (e.g. 30), got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number of seconds (e.g. 30), got {value!r}"
    if value <= 0:
        return f"must be > 0 seconds, got {value!r}"
    return None


def setting_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be the setting ``name`` (wrong type or range), or None when it can."""
    if name in _FLOAT_FIELDS:
        return seconds_problem(value)
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number (e.g. {name} = 4), got {value!r}"
        if value < _INT_MIN[name]:
            return f"must be >= {_INT_MIN[name]}, got {value}"
        if name in _INT_MAX and value > _INT_MAX[name]:
            return f"must be <= {_INT_MAX[name]}, got {value}"
        return None
    if name in _TEXT_FIELDS:
        return None if isinstance(value, str) else f"must be text (a quoted string), got {value!r}"
    if name == "db_path":
        ok = isinstance(value, str | Path) and str(value).strip() != ""
        return None if ok else f'must be a file path (e.g. db_path = "portone_recon.duckdb"), got {value!r}'
    return None


def _convert(var: str, name: str, raw: str) -> Any:
    try:
        if name in _INT_FIELDS:
            value_int = int(raw)
            problem = setting_problem(name, value_int)
            if problem:
                raise ConfigError(f"{var} {problem}")
            return value_int
        if name not in _FLOAT_FIELDS:
            return raw
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a number, got {raw!r}") from None
    if seconds_problem(value):
        raise ConfigError(f"{var} must be a finite number of seconds > 0 (e.g. 30), got {raw!r}")
    return value


def _secret_keys(table: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of every key, at any depth, that names a secret."""
    found = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if any(word in str(key).lower() for word in _SECRET_WORDS):
            found.append(dotted)
        tables = [value] if isinstance(value, Mapping) else value if isinstance(value, list) else []
        for i, sub in enumerate(tables):
            if isinstance(sub, Mapping):
                found.extend(_secret_keys(sub, f"{dotted}." if sub is value else f"{dotted}[{i}]."))
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: cannot read settings: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from exc
    secrets = _secret_keys(data)
    if secrets:  # the values are never echoed: they are the secret
        raise ConfigError(
            f"{path}: {', '.join(secrets)}: a secret does not belong in a file; put it in the environment "
            "(PORTONE_IMP_SECRET) or a secrets manager, and remove it from the file"
        )
    table: Any = data
    if "portone_recon" in data:
        table = data["portone_recon"]
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: portone_recon must be a table ([portone_recon]), got {table!r}")
        outside = sorted(set(data) - {"portone_recon"})
        if outside:
            raise ConfigError(
                f"{path}: {outside} outside the [portone_recon] table would be ignored; move them into "
                "that table"
            )
    allowed = set(Settings.__dataclass_fields__) - set(_SECRET_FIELDS)
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {sorted(unknown)}; known: {sorted(allowed)}")
    for key, value in table.items():
        problem = setting_problem(key, value)
        if problem:
            raise ConfigError(f"{path}: setting {key} {problem}")
    return dict(table)
