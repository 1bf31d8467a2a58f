"""A client generated from our /openapi.json (openapi-python-client), as a mobile or clinic developer
makes one: it builds, imports, and records a dose, its retry and a conflict against a live server,
with every answer parsed into its model (a retry's 200 too)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from services.settings import Settings
from tests.servers import serving
from tests.world import World

pytestmark = pytest.mark.one_database
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


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


async def test_a_generated_client_records_a_dose_its_retry_and_a_conflict(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    client_package = _generate(settings, tmp_path)
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
