"""`symptrack migrate --to REVISION` as an operator runs it: from the installed package (a wheel, as the
image installs it, run outside the checkout), both ways, and one line when the revision is unknown."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from services.platform import migrations
from tests.databases import settings_for

CHECKOUT = Path(__file__).resolve().parent.parent
SYMPTRACK = str(Path(sys.executable).with_name("symptrack"))


def _environment(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("SYMPTRACK_", "PYTHON"))}
    return {
        **env,
        "SYMPTRACK_DATABASE_URL": database_url,
        "SYMPTRACK_ENVIRONMENT": "development",
        "SYMPTRACK_SECRET_KEY": settings_for(database_url).secret_key,
        "SYMPTRACK_DATA_DIR": str(data_dir),
        "SYMPTRACK_LOG_LEVEL": "WARNING",
    }


def _installed_wheel(folder: Path) -> Path:
    """A fresh virtual environment with symptrack installed from its wheel, not the checkout; its
    dependencies are this environment's (a path to our site-packages: no index needed)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(folder / "dist"),
            str(CHECKOUT),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    [wheel] = (folder / "dist").glob("symptrack-*.whl")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    # A plain path line: the checkout's editable-install hook in our site-packages is not run.
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return venv / "bin"


@pytest.mark.slow
def test_the_installed_package_downgrades_and_upgrades(tmp_path: Path) -> None:
    bin_dir = _installed_wheel(tmp_path)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'symptrack.db'}"
    head = migrations.migrate_to(settings_for(database_url)).head
    env = _environment(database_url, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def installed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / args[0]), *args[1:]],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    down = installed("symptrack", "migrate", "--to", "0009")
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"database migrated from {head} (head) to 0009"
    up = installed("symptrack", "migrate", "--to", "head")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"database migrated from 0009 to {head} (head)"
    # It ran the wheel's own copy of the scripts, not the checkout's.
    where = installed(
        "python", "-c", "from services.settings import Settings; print(Settings().migrations_dir)"
    )
    assert where.stdout.strip().startswith(str(bin_dir.parent))
    assert where.stdout.strip().endswith("services/platform/migration_scripts")


def test_an_unknown_revision_is_one_line_and_a_failure(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'symptrack.db'}"
    result = subprocess.run(
        [SYMPTRACK, "migrate", "--to", "0042"],
        env=_environment(database_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: unknown revision '0042': give head, base or one of 0001 to "
        + max(migrations.head_revisions(settings_for(database_url).migrations_dir))
    )
    assert "Traceback" not in result.stderr
