"""The OpenAPI document, made to agree with what the app answers: problem+json for every error."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api.errors import PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA_REF, Problem

_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA_REF}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        _, problem_defs = models_json_schema(
            [(Problem, "validation")], ref_template="#/components/schemas/{model}"
        )
        schemas.update(problem_defs.get("$defs", {}))
        # FastAPI documents its own 422 body; ours is a problem like every other error.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Unprocessable content", "content": _PROBLEM_CONTENT}
                responses.setdefault(
                    "500", {"description": "Internal server error", "content": _PROBLEM_CONTENT}
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
