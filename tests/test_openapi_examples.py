"""Every model of the OpenAPI document says what it is and shows an example, and every example is
valid against its own model (so examples can't rot as models change); every operation has a summary
and a description."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.app import create_app
from api.openapi import FORM_BODIES, document_models
from tests.databases import settings_for

APP = create_app(settings_for("sqlite+aiosqlite:///:memory:"))  # never started: no database
DOCUMENT = APP.openapi()
MODELS = document_models(APP)
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
OBJECT_SCHEMAS = sorted(name for name, schema in SCHEMAS.items() if schema.get("type") == "object")
FORM_NAMES = {name for name, _, _ in FORM_BODIES.values()}


def test_the_document_lists_only_our_models() -> None:
    # FastAPI's own 422 models are replaced by our problem; form bodies get a name of our own.
    assert not [name for name in SCHEMAS if name.startswith(("Body_", "HTTPValidationError"))]
    ours = {name for name, model in MODELS.items() if model.__module__.split(".")[0] in ("models", "api")}
    assert set(OBJECT_SCHEMAS) - FORM_NAMES <= ours, set(OBJECT_SCHEMAS) - ours


@pytest.mark.parametrize("name", OBJECT_SCHEMAS)
def test_every_model_has_a_description_and_an_example(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema.get("description", "").strip(), f"{name}: no description (a docstring on the model)"
    assert schema.get("examples"), f"{name}: no example (model_config json_schema_extra examples)"


@pytest.mark.parametrize("name", sorted(set(OBJECT_SCHEMAS) - FORM_NAMES))
def test_every_example_is_valid_against_its_own_model(name: str) -> None:
    for example in SCHEMAS[name]["examples"]:
        # As JSON, the way a request body arrives: strict fields read it as a client would send it.
        MODELS[name].model_validate_json(json.dumps(example))


def test_the_form_examples_fill_the_form() -> None:
    for name in FORM_NAMES:
        schema = SCHEMAS[name]
        for example in schema["examples"]:
            assert set(schema["required"]) <= set(example) <= set(schema["properties"])


def test_a_response_example_round_trips_as_the_api_writes_it() -> None:
    # The summary example is written with its wire names ("from", "to"), as the API answers.
    summary = MODELS["PatientSummary"]
    example = SCHEMAS["PatientSummary"]["examples"][0]
    answered = summary.model_validate(example).model_dump(mode="json", by_alias=True)
    assert answered["from"] == example["from"] and answered["to"] == example["to"]


def test_every_operation_has_a_summary_and_a_description() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            summary = operation.get("summary", "")
            # FastAPI's fallback is the function name in title case ("Record Route"): not a summary.
            assert summary and summary != summary.title(), (method, path, summary)
            # The route's docstring (or `description=`): what the summary leaves out.
            assert len(operation.get("description", "")) > 20, (method, path)
