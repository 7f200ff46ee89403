"""The package root's public API is curated: `__all__` is sorted, complete and importable."""

from __future__ import annotations

import portone_recon as pr


def test_all_is_sorted_and_importable() -> None:
    assert pr.__all__ == sorted(pr.__all__)
    for name in pr.__all__:
        assert hasattr(pr, name), name


def test_every_public_name_is_listed() -> None:
    public = {n for n in vars(pr) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(pr, n)).__name__ == "module"}
    assert public - modules == set(pr.__all__) - {"__version__"}


def test_design_entry_points_exist() -> None:
    for name in ("PortOneClient", "open_store", "sync", "load_orders", "reconcile", "plan_fixes", "apply"):
        assert name in pr.__all__
    assert callable(pr.PortOneClient.from_env)
