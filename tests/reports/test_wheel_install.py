"""A non-editable install from the wheel runs ``portone-recon demo`` (notebooks and all) in any folder.

The wheel is built from a copy of the sources and installed, without dependencies, into a fresh
virtualenv; the dependencies come from the test's own environment through a ``.pth`` line (this keeps
the test offline and fast; the installed ``portone_recon`` is the wheel's, which the test checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_install_runs_the_demo_from_a_temporary_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "portone_recon", src / "portone_recon", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(wheels)], cwd=src)
    (wheel,) = wheels.glob("portone_recon-*.whl")

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        cwd=tmp_path,
    )
    fresh_site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path
        ).stdout.strip()
    )
    (fresh_site / "_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )

    work = tmp_path / "anywhere"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTONE_", "JUPYTER", "PYTHON", "VIRTUAL_ENV"))
    }
    env["HOME"] = str(tmp_path / "home")  # no user-level Jupyter kernels: ipykernel's own python3 kernel
    (tmp_path / "home").mkdir()
    # nbconvert's templates are data files of the nbconvert install (share/jupyter), which the .pth line
    # does not bring along; only they are shared, not the kernels (the kernel must be the fresh python)
    jupyter_data = tmp_path / "jupyter-data"
    jupyter_data.mkdir()
    (jupyter_data / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    env["JUPYTER_PATH"] = str(jupyter_data)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    where = _run(
        [str(python), "-c", "import portone_recon; print(portone_recon.__file__)"], cwd=work, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout
    cli = bin_dir / ("portone-recon.exe" if os.name == "nt" else "portone-recon")
    demo = _run(
        [
            str(cli),
            "demo",
            "--subscribers",
            "120",
            "--months",
            "4",
            "--db",
            "demo.duckdb",
            "--out",
            "reports",
        ],
        cwd=work,
        env=env,
    )
    assert "daily_reconciliation.html" in demo.stdout, demo.stdout
    html = work / "reports" / "daily"
    assert any(html.rglob("daily_reconciliation.html")) and any(html.rglob("summary.json"))
    assert "오늘 새로 발견" in next(html.rglob("daily_reconciliation.html")).read_text(encoding="utf-8")
    report = _run(
        [
            str(cli),
            "report",
            "daily",
            "--db",
            "demo.duckdb",
            "--no-reconcile",
            "--fail-on",
            "none",
            "--out",
            "again",
        ],
        cwd=work,
        env=env,
    )
    assert "again/daily" in report.stdout.replace(os.sep, "/")
