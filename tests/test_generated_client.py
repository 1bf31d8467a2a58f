"""A client generated from our /openapi.json (openapi-python-client), as a mobile or clinic developer
makes one: it builds, imports, and records a dose, its retry and a conflict against a live server,
with every answer parsed into its model (a retry's 200 too). A sync batch is typed entry by entry (a
class per kind, `dose_mg: float`): a type checker refuses `dose_mg="three hundred"`, and the answer
parses with each entry's flags and advice. The same for TypeScript types (openapi-typescript, tsc)."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import typing
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from api.app import create_app
from services.clinical.rules import ADVICE
from services.settings import Settings
from tests.databases import settings_for
from tests.servers import serving
from tests.world import World

pytestmark = pytest.mark.one_database
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
MYPY = Path(sys.executable).parent / "mypy"


def _generate(settings: Settings, folder: Path) -> Any:
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(create_app(settings).openapi()))
    config = folder / "config.yaml"
    config.write_text("post_hooks: []\npackage_name_override: symptrack_client\n")
    subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--config", str(config), "--meta", "none"],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("symptrack_client")
    finally:
        sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The client, generated once for this module's tests (the document does not depend on the
    database), and the folder that holds it."""
    folder = tmp_path_factory.mktemp("generated")
    return _generate(settings_for("sqlite+aiosqlite:///:memory:"), folder), folder


async def test_a_generated_client_records_a_dose_its_retry_and_a_conflict(
    settings: Settings, world: World, generated: tuple[Any, Path]
) -> None:
    client_package, _ = generated
    record_dose = importlib.import_module("symptrack_client.api.patients.record_dose")
    models = importlib.import_module("symptrack_client.models")
    taken_at = datetime.now(UTC) - timedelta(hours=1)
    dose = models.DoseCreate(id=uuid.uuid4(), taken_at=taken_at, dose_mg=300.0)
    changed = models.DoseCreate(id=dose.id, taken_at=taken_at, dose_mg=600.0)

    with serving(create_app(settings)) as base:
        patient = client_package.AuthenticatedClient(base_url=base, token=world["patient_a"].access_token)
        with patient:
            first = record_dose.sync_detailed("me", client=patient, body=dose)
            retry = record_dose.sync_detailed("me", client=patient, body=dose)
            conflict = record_dose.sync_detailed("me", client=patient, body=changed)

    assert first.status_code == 201 and isinstance(first.parsed, models.DosePublic)
    assert retry.status_code == 200 and isinstance(retry.parsed, models.DosePublic)  # not None
    assert retry.parsed.id == first.parsed.id == dose.id and retry.parsed.dose_mg == 300
    assert conflict.status_code == 409 and isinstance(conflict.parsed, models.Problem)
    assert conflict.parsed.status == 409


def test_a_generated_client_has_a_class_per_kind_of_sync_entry(generated: tuple[Any, Path]) -> None:
    models = importlib.import_module("symptrack_client.models")
    kinds = {
        "dose": models.DoseEntry,
        "anxiety": models.AnxietyEntry,
        "symptom": models.SymptomEntry,
        "check_in": models.CheckInEntry,
    }

    # The generated modules import each other only for type checkers: resolve names in the package.
    def hints(model: type) -> dict[str, Any]:
        return typing.get_type_hints(model, localns=vars(models))

    entries = hints(models.SyncRequest)["entries"]
    assert typing.get_origin(entries) is list
    assert set(typing.get_args(typing.get_args(entries)[0])) == set(kinds.values())
    for kind, model in kinds.items():
        fields = hints(model)
        assert fields["type_"] == Literal[kind] and fields["patient_id"] is str
    assert hints(models.DoseEntry)["dose_mg"] is float
    result = hints(models.SyncResult)
    assert result["flags"] == list[models.FlagPublic] and result["advice"] == str | None


async def test_a_generated_client_syncs_a_typed_batch_and_reads_the_advice_of_each_entry(
    settings: Settings, world: World, generated: tuple[Any, Path]
) -> None:
    client_package, _ = generated
    sync_entries = importlib.import_module("symptrack_client.api.entries.sync_entries")
    models = importlib.import_module("symptrack_client.models")
    now = datetime.now(UTC)
    dose = models.DoseEntry(type_="dose", patient_id="me", id=uuid.uuid4(), taken_at=now, dose_mg=300.0)
    check_in = models.CheckInEntry(
        type_="check_in",
        patient_id="me",
        id=uuid.uuid4(),
        date=(now - timedelta(hours=12)).date(),
        submitted_at=now - timedelta(minutes=1),
        red_flags=models.CheckInEntryRedFlags.from_dict({"hard_to_wake": True}),
    )
    batch = models.SyncRequest(entries=[dose, check_in])

    with serving(create_app(settings)) as base:
        patient = client_package.AuthenticatedClient(base_url=base, token=world["patient_a"].access_token)
        with patient:
            answer = sync_entries.sync_detailed(client=patient, body=batch)

    assert answer.status_code == 200 and isinstance(answer.parsed, models.SyncAnswer), answer.content
    plain, urgent = answer.parsed.results
    assert (plain.status, plain.flags, plain.advice) == (201, [], None)
    assert urgent.status == 201 and [f.rule for f in urgent.flags] == ["respiratory_depression"]
    assert isinstance(urgent.flags[0], models.FlagPublic) and urgent.flags[0].severity.value == "urgent"
    assert urgent.advice == answer.parsed.advice == ADVICE[urgent.flags[0].severity.value]


_TYPED_BATCH = """\
import uuid
from datetime import UTC, datetime

from symptrack_client.models import DoseEntry, SyncRequest

batch = SyncRequest(
    entries=[
        DoseEntry(type_="dose", patient_id="me", id=uuid.uuid4(), taken_at=datetime.now(UTC), dose_mg=DOSE)
    ]
)
"""


@pytest.mark.slow
def test_a_type_checker_refuses_a_dose_of_three_hundred_in_words(generated: tuple[Any, Path]) -> None:
    _, folder = generated
    (folder / "mypy.ini").write_text("[mypy]\nfollow_imports = silent\n")
    for name, dose in (("good", "300"), ("bad", '"three hundred"')):
        (folder / f"{name}.py").write_text(_TYPED_BATCH.replace("DOSE", dose))
    # One mypy run for both files (it takes seconds to start): errors are reported per file.
    checked = subprocess.run(
        [str(MYPY), "--config-file", "mypy.ini", "--cache-dir", ".mypy_cache", "good.py", "bad.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 1, checked.stdout
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].startswith("bad.py:"), checked.stdout
    assert 'Argument "dose_mg" to "DoseEntry" has incompatible type "str"; expected "float"' in errors[0]


def _npm_or_skip() -> str:
    """npm's path. Missing: a skip on a developer's machine, a failure in CI (.ci/run installs it)."""
    found = shutil.which("npm")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("npm is missing: .ci/run installs it (apt-get install -y nodejs npm)")
    pytest.skip("npm is not installed (apt-get install -y nodejs npm)")


_TS_BATCH = """\
import type { components } from "./schema";

export const batch: components["schemas"]["SyncRequest"] = {
  entries: [
    { type: "dose", patient_id: "me", id: "c20ad4d7-6fe9-4759-aa27-5a2c1d9b3c07",
      taken_at: "2026-05-04T08:05:00-04:00", dose_mg: DOSE },
    { type: "check_in", patient_id: "me", id: "9bf31c7f-f062-436a-96d3-5a2c1d9b3c10", date: "2026-05-04",
      submitted_at: "2026-05-04T20:30:00-04:00", red_flags: { hard_to_wake: true } },
  ],
};
"""


TS_PACKAGES = ("openapi-typescript@7", "typescript@5")


def _typescript_tools(npm: str) -> Path:
    """The tools' bin folder, installed once per package list into ~/.cache/symptrack-ts (a run on
    the same machine reuses it: npm install takes seconds). Installed beside it, then renamed into
    place, so concurrent runs never see half an install."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "symptrack-ts"
    folder = cache / hashlib.sha256(" ".join(TS_PACKAGES).encode()).hexdigest()[:16]
    bin_dir = folder / "node_modules" / ".bin"
    if (bin_dir / "tsc").exists() and (bin_dir / "openapi-typescript").exists():
        return bin_dir
    cache.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=cache, prefix="installing-"))
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", *TS_PACKAGES],
        cwd=fresh,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        if os.environ.get("CI") == "true":
            pytest.fail(f"npm install failed: {installed.stderr[-2000:]}")
        pytest.skip(f"npm could not install openapi-typescript and typescript: {installed.stderr[-300:]}")
    try:
        fresh.rename(folder)
    except OSError:  # another run put it there first
        shutil.rmtree(fresh, ignore_errors=True)
    return bin_dir


@pytest.mark.slow
def test_typescript_types_refuse_a_dose_of_three_hundred_in_words(tmp_path: Path) -> None:
    """openapi-typescript and tsc from the npm registry, as a phone app's developer types the API; no
    registry to reach: a skip, or a failure in CI."""
    bin_dir = _typescript_tools(_npm_or_skip())
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(create_app(settings_for("sqlite+aiosqlite:///:memory:")).openapi()))
    # A default is something the server fills in, not something a request must send.
    subprocess.run(
        [str(bin_dir / "openapi-typescript"), str(spec), "-o", "schema.d.ts", "--default-non-nullable=false"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name, dose in (("good", "300"), ("bad", '"three hundred"')):
        (tmp_path / f"{name}.ts").write_text(_TS_BATCH.replace("DOSE", dose))
    # One compiler run for both files (it starts in seconds): errors are reported per file.
    checked = subprocess.run(
        [str(bin_dir / "tsc"), "--noEmit", "--strict", "good.ts", "bad.ts"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode != 0
    assert "good.ts" not in checked.stdout, checked.stdout
    errors = [line for line in checked.stdout.splitlines() if line.startswith("bad.ts(")]
    assert len(errors) == 1 and errors[0].startswith("bad.ts(6,"), checked.stdout  # the dose line only
    assert "Type 'string' is not assignable to type 'number'" in checked.stdout
