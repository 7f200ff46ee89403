"""While one V2 listing waits for its pages, a later listing's finished files are staged; a staging error
of the later listing is raised at its own turn, never into the stream that happened to be waiting."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portone_recon.errors import MalformedResponseError
from portone_recon.store import Store
from portone_recon.sync import v2 as v2_sync


class _Staging:
    def __init__(self, name: str, files: int, fail: bool = False) -> None:
        self.name = name
        self.files = files
        self.fail = fail
        self.staged = 0

    def stage(self, *, final: bool = False, one: bool = False) -> int:
        if self.fail:
            raise MalformedResponseError("page bodies could not be read", method="GET", endpoint="/x")
        n = self.files if final or not one else min(1, self.files)
        self.files -= n
        self.staged += n
        return n


def _run(tmp_path: Path) -> Any:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    run = v2_sync._V2Run(
        None,  # type: ignore[arg-type]
        Store(tmp_path / "s.duckdb"),
        since=None,
        until=now,
        now=now,
        lookback=timedelta(days=1),
        horizon=timedelta(days=1),
        overlap=timedelta(hours=1),
        only_v2=False,
        progress=False,
    )
    run.con = __import__("duckdb").connect()
    return run


def test_a_later_listings_files_are_staged_while_one_waits_and_its_error_waits_for_its_turn(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path)
    payments, schedules, keys = _Staging("pay", 0), _Staging("sch", 2, fail=True), _Staging("key", 3)
    run._stagings = {"v2:payments": payments, "v2:schedules": schedules, "v2:billing_keys": keys}
    run._stage_ahead(payments)  # schedules fails to stage: kept; billing keys stage one file instead
    assert keys.staged == 1 and "sch" in run._ahead_errors
    run._stage_ahead(payments)  # a listing that failed is not tried again before its turn
    assert keys.staged == 2 and payments.staged == 0
    done: Future[Any] = Future()
    done.set_result("fetched")
    assert run._staged(done, payments) == "fetched"  # the waiting stream is not the one that fails
    with pytest.raises(MalformedResponseError, match="could not be read"):
        run._staged(done, schedules)  # raised at the schedules' own turn
