"""Records the sync could not read are never silently missing from a reconciliation: their own line."""

from __future__ import annotations

from _recon_world import World, kst

from portone_recon.reconcile.result import count_quarantined, quarantine_line


def _hold(world: World, n: int) -> None:
    with world.store.transaction() as con:
        for i in range(n):
            con.execute(
                "INSERT INTO quarantine (source, record_key, endpoint, reason, stream, raw, raw_hash, "
                "first_seen, last_seen) VALUES ('payments', ?, '/payments/status/{payment_status}', "
                "'response.list[0].status: expected one of [...], got VARCHAR \"partial_cancelled\"', "
                "'payments:paid', '{}', ?, now(), now())",
                [f"imp_{i}", i],
            )


def test_a_clean_store_shows_no_quarantine_line(world: World) -> None:
    world.renewal("cus_1", kst(2026, 11, 20))
    result = world.run()
    assert result.quarantined == 0
    assert "quarantined" not in repr(result) and "quarantined" not in result._repr_html_()


def test_quarantined_records_are_counted_and_shown_in_text_and_html(world: World) -> None:
    world.renewal("cus_1", kst(2026, 11, 20))
    _hold(world, 2)
    result = world.run()
    assert result.quarantined == 2
    assert quarantine_line(2) in repr(result)
    assert quarantine_line(2) in result._repr_html_()
    with world.store.connect() as con:
        assert count_quarantined(con) == 2
