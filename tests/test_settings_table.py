"""docs/PRODUCTION.md's settings table lists exactly the fields of Settings, each with its real default,
so the documentation and the code never drift apart (issue 26)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from services.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ROOT / "docs" / "PRODUCTION.md"
# Defaults computed where the code runs (a path in the checkout or in the installed package): the
# table says what they are instead of a value.
COMPUTED = {"migrations_dir": "(installed)"}


def _table() -> dict[str, str]:
    """The settings table: each variable with its documented default, as written."""
    text = PRODUCTION.read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(SYMPTRACK_[A-Z0-9_]+)` \| ([^|]+) \|", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is in the table twice"
            rows[match.group(1)] = match.group(2).strip()
    return rows


def _documented(value: Any) -> str:
    """A default as the table writes it: in backticks, floats without a useless .0, nothing as unset."""
    if value is None or value == "" or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return "unset"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list):
        text = json.dumps(value)
    else:
        text = str(value)
    return f"`{text}`"


def test_the_table_lists_every_setting_and_nothing_else() -> None:
    documented = set(_table())
    fields = {f"SYMPTRACK_{name.upper()}" for name in Settings.model_fields}
    assert documented - fields == set(), "in docs/PRODUCTION.md but not in services/settings.py"
    assert fields - documented == set(), "in services/settings.py but not in docs/PRODUCTION.md's table"


def test_the_table_gives_each_setting_its_real_default() -> None:
    table = _table()
    for name, field in Settings.model_fields.items():
        written = table[f"SYMPTRACK_{name.upper()}"]
        if name in COMPUTED:
            assert written == COMPUTED[name], name
            continue
        assert written == _documented(field.get_default(call_default_factory=True)), name


def test_the_readme_points_to_the_table_and_says_where_the_command_is() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/PRODUCTION.md" in readme
    assert ".venv/bin/symptrack" in readme
