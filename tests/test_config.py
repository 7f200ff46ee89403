from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from portone_recon.config import DEFAULT_API_BASE, Secret, Settings
from portone_recon.errors import ConfigError

CANARY = "canary-secret-5f1e"


def test_from_env_reads_every_variable(tmp_path: Path) -> None:
    env = {
        "PORTONE_IMP_KEY": "imp_key_1",
        "PORTONE_IMP_SECRET": CANARY,
        "PORTONE_API_BASE": "http://127.0.0.1:8099/",
        "PORTONE_RECON_DB": str(tmp_path / "x.duckdb"),
        "PORTONE_CONCURRENCY": "8",
        "PORTONE_READ_TIMEOUT": "12.5",
        "PORTONE_LOCK_TIMEOUT": "3",
    }
    s = Settings.from_env(env, toml_path=tmp_path / "none.toml")
    assert s.imp_key == "imp_key_1"
    assert s.imp_secret.reveal() == CANARY
    assert s.api_base == "http://127.0.0.1:8099"
    assert s.db_path == tmp_path / "x.duckdb"
    assert (s.concurrency, s.read_timeout, s.lock_timeout) == (8, 12.5, 3.0)


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({}, toml_path=tmp_path / "none.toml")
    assert s.api_base == DEFAULT_API_BASE
    assert s.db_path == Path("portone_recon.duckdb")
    assert s.concurrency == 4
    assert not s.imp_secret


def test_secret_never_prints() -> None:
    s = Settings.from_env({"PORTONE_IMP_SECRET": CANARY, "PORTONE_IMP_KEY": "k"}, toml_path="/nonexistent")
    for text in (repr(s), str(s), repr(s.imp_secret), f"{s.imp_secret}", str(s.__dict__)):
        assert CANARY not in text
    with pytest.raises(TypeError):
        pickle.dumps(s.imp_secret)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PORTONE_CONCURRENCY": "many"}, "PORTONE_CONCURRENCY"),
        ({"PORTONE_CONCURRENCY": "0"}, "PORTONE_CONCURRENCY"),
        ({"PORTONE_API_BASE": "ftp://x"}, "PORTONE_API_BASE"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env, toml_path="/nonexistent")


def test_require_credentials_names_missing() -> None:
    with pytest.raises(ConfigError, match="PORTONE_IMP_KEY and PORTONE_IMP_SECRET"):
        Settings.from_env({}, toml_path="/nonexistent").require_credentials()
    Settings.from_env(
        {"PORTONE_IMP_KEY": "k", "PORTONE_IMP_SECRET": "s"}, toml_path="/x"
    ).require_credentials()


def test_toml_file_and_refusal_of_secret(tmp_path: Path) -> None:
    p = tmp_path / "portone_recon.toml"
    p.write_text('[portone_recon]\nimp_key = "from_toml"\nconcurrency = 2\n', encoding="utf-8")
    s = Settings.from_env({"PORTONE_CONCURRENCY": "6"}, toml_path=p)
    assert s.imp_key == "from_toml"
    assert s.concurrency == 6  # the environment wins over the file
    p.write_text('imp_secret = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="does not belong in a file"):
        Settings.from_env({}, toml_path=p)
    p.write_text('colour = "red"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, toml_path=p)


def test_secret_equality_and_with() -> None:
    s = Settings().with_(imp_secret="abc")
    assert isinstance(s.imp_secret, Secret)
    assert s.imp_secret == Secret("abc")
