"""Windows has no ``fcntl``: the package imports and its read-only features (reconcile, triage, findings,
reports' data) work without it, and the apply lock still excludes a second holder."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from _recon_world import World, kst

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["fcntl"] = None  # `import fcntl` now raises ImportError, as on Windows
    try:
        import fcntl  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("fcntl is still importable")

    import json
    from pathlib import Path

    import portone_recon as pr
    from portone_recon.actions.journal import apply_lock
    from portone_recon.cli import main
    from portone_recon.errors import ApplyInProgressError
    from portone_recon.reports import build_daily

    db = Path(sys.argv[1])
    result = pr.reconcile(db, as_of="2026-11-27T06:00:00+09:00", progress=False)
    fid = str(result.findings["finding_id"].iloc[0])
    pr.acknowledge(db, [fid], note="seen on a Windows laptop", by="win")
    again = pr.reconcile(db, as_of="2026-11-28T06:00:00+09:00", progress=False)
    assert list(again.acknowledged["finding_id"]) == [fid], again.acknowledged
    assert pr.load_result(db).findings.set_index("finding_id").loc[fid, "triage_by"] == "win"
    assert main(["findings", "--state", "all", "--format", "json", "--db", str(db)]) == 0
    daily = build_daily(db, as_of="2026-11-28T06:00:00+09:00", reconcile=False)
    assert daily.acknowledged_count == 1
    lock = db.with_name(db.name + ".apply.lock")
    with apply_lock(lock):
        try:
            with apply_lock(lock):
                raise SystemExit("a second holder got the apply lock")
        except ApplyInProgressError:
            pass
    print("OK", len(again), "fcntl" in sys.modules and sys.modules["fcntl"] is None)
    """
)


def test_package_works_without_fcntl(world: World, tmp_path: Path) -> None:
    world.renewal("cus_1", kst(2026, 11, 20), webhook=False)
    world.payment("ghost", customer_uid="cus_9", at=kst(2026, 11, 2))
    world.flush()
    script = tmp_path / "no_fcntl.py"
    script.write_text(SCRIPT, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(world.store.path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("OK ") and last.endswith(" True"), proc.stdout[-2000:]
