"""The OpenAPI document, made to agree with what the app answers: problem+json for every error."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import (  # type: ignore[attr-defined]  # FastAPI's own helpers, re-exported
    get_fields_from_routes,
    get_flat_models_from_fields,
    get_model_name_map,
    get_openapi,
)
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.errors import PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA_REF, Problem, ProblemFieldError
from api.rate_limit import EXEMPT
from models.exports import FhirBundle, FhirBundleEntry

_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA_REF}}

# Every operation's id, in one table: stable for generated clients (a renamed function changes none),
# snake_case, naming the action. A route missing here fails tests/test_openapi.py.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "get_health",
    ("GET", "/readyz"): "get_readiness",
    ("GET", "/metrics"): "get_metrics",
    ("POST", "/v1/auth/token"): "sign_in",
    ("POST", "/v1/auth/refresh"): "refresh_tokens",
    ("POST", "/v1/auth/logout"): "sign_out",
    ("POST", "/v1/auth/enroll"): "enroll",
    ("GET", "/v1/me"): "get_me",
    ("GET", "/v1/catalog"): "get_catalog",
    ("GET", "/v1/providers"): "list_providers",
    ("POST", "/v1/providers"): "create_provider",
    ("POST", "/v1/users/{user_id}/deactivate"): "deactivate_user",
    ("POST", "/v1/users/{user_id}/reactivate"): "reactivate_user",
    ("GET", "/v1/patients"): "list_patients",
    ("POST", "/v1/patients"): "create_patient",
    ("GET", "/v1/patients/{patient_id}"): "get_patient",
    ("PATCH", "/v1/patients/{patient_id}"): "update_patient",
    ("GET", "/v1/patients/{patient_id}/regimens"): "list_regimens",
    ("POST", "/v1/patients/{patient_id}/regimens"): "create_regimen",
    ("GET", "/v1/patients/{patient_id}/doses"): "list_doses",
    ("POST", "/v1/patients/{patient_id}/doses"): "record_dose",
    ("DELETE", "/v1/patients/{patient_id}/doses/{entry_id}"): "delete_dose",
    ("GET", "/v1/patients/{patient_id}/anxiety"): "list_anxiety_scores",
    ("POST", "/v1/patients/{patient_id}/anxiety"): "record_anxiety",
    ("DELETE", "/v1/patients/{patient_id}/anxiety/{entry_id}"): "delete_anxiety_score",
    ("GET", "/v1/patients/{patient_id}/symptoms"): "list_symptom_reports",
    ("POST", "/v1/patients/{patient_id}/symptoms"): "record_symptom",
    ("DELETE", "/v1/patients/{patient_id}/symptoms/{entry_id}"): "delete_symptom_report",
    ("GET", "/v1/patients/{patient_id}/check-ins"): "list_check_ins",
    ("POST", "/v1/patients/{patient_id}/check-ins"): "record_check_in",
    ("DELETE", "/v1/patients/{patient_id}/check-ins/{entry_id}"): "delete_check_in",
    ("POST", "/v1/sync"): "sync_entries",
    ("GET", "/v1/patients/{patient_id}/flags"): "list_patient_flags",
    ("GET", "/v1/patients/{patient_id}/summary"): "get_patient_summary",
    ("GET", "/v1/patients/{patient_id}/report"): "get_patient_report",
    ("GET", "/v1/patients/{patient_id}/export.csv"): "export_patient_csv",
    ("GET", "/v1/patients/{patient_id}/fhir"): "export_patient_fhir",
    ("GET", "/v1/panel"): "get_panel",
    ("GET", "/v1/flags"): "list_flags",
    ("GET", "/v1/flags/{flag_id}"): "get_flag",
    ("POST", "/v1/flags/{flag_id}/acknowledge"): "acknowledge_flag",
    ("POST", "/v1/flags/{flag_id}/resolve"): "resolve_flag",
    ("GET", "/v1/audit"): "list_audit_events",
    ("GET", "/v1/webhook-endpoints"): "list_webhook_endpoints",
    ("POST", "/v1/webhook-endpoints"): "create_webhook_endpoint",
    ("GET", "/v1/webhook-endpoints/{endpoint_id}"): "get_webhook_endpoint",
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): "update_webhook_endpoint",
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): "delete_webhook_endpoint",
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): "rotate_webhook_secret",
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/ping"): "ping_webhook_endpoint",
    ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): "list_webhook_deliveries",
    ("POST", "/v1/webhook-deliveries/{delivery_id}/retry"): "retry_webhook_delivery",
}


# Form bodies, which FastAPI names after the function and path ("Body_sign_in_v1_auth_token_post"):
# a name, a description and an example of their own, as the JSON bodies' models have.
FORM_BODIES: dict[str, tuple[str, str, dict[str, str]]] = {
    "sign_in": (
        "SignInForm",
        "An OAuth2 password form (application/x-www-form-urlencoded), not JSON: `username` is the email.",
        {"username": "alex.rivera@example.org", "password": "long-passphrase-42"},
    ),
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        # Models of bodies FastAPI does not make itself: problems, and the FHIR export's Bundle.
        _, problem_defs = models_json_schema(
            [(Problem, "validation"), (FhirBundle, "validation")], ref_template="#/components/schemas/{model}"
        )
        schemas.update(problem_defs.get("$defs", {}))
        # FastAPI documents its own 422 body; ours is a problem like every other error.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path, path_item in schema.get("paths", {}).items():
            for method, operation in path_item.items():
                # FastAPI's own ids carry the path ("record_dose_v1_patients__patient_id__doses_post").
                operation["operationId"] = OPERATION_IDS.get((method.upper(), path), operation["operationId"])
                responses = operation.setdefault("responses", {})
                _document_edge_problems(path, operation, responses)
                if "422" in responses:
                    responses["422"] = {"description": "Unprocessable content", "content": _PROBLEM_CONTENT}
                responses.setdefault(
                    "500", {"description": "Internal server error", "content": _PROBLEM_CONTENT}
                )
        _name_form_bodies(schema)
        _restore_examples(schemas, document_models(app))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_edge_problems(path: str, operation: dict[str, Any], responses: dict[str, Any]) -> None:
    """The problems the edge can answer for any route, which no route declares itself: a body over
    1 MiB (413), the rate limits (429), a dependency unavailable (503: the database,
    its pool exhausted, or Redis for sign-in)."""
    if "requestBody" in operation:
        responses.setdefault("413", {"description": "Content Too Large", "content": _PROBLEM_CONTENT})
    if path not in EXEMPT:
        responses.setdefault(
            "429",
            {
                "description": "Too Many Requests (see the Retry-After header)",
                "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
                "content": _PROBLEM_CONTENT,
            },
        )
    if path.startswith("/v1/") and path != "/v1/catalog":
        responses.setdefault(
            "503",
            {
                "description": "Service Unavailable (the database, or Redis at sign-in; see Retry-After)",
                "content": _PROBLEM_CONTENT,
            },
        )


def _name_form_bodies(schema: dict[str, Any]) -> None:
    schemas = schema["components"]["schemas"]
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            if operation["operationId"] not in FORM_BODIES:
                continue
            name, description, example = FORM_BODIES[operation["operationId"]]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                old = media["schema"]["$ref"].rsplit("/", 1)[-1]
                body = schemas.pop(old, None) or schemas[name]
                schemas[name] = {**body, "title": name, "description": description, "examples": [example]}
                media["schema"]["$ref"] = f"#/components/schemas/{name}"


def document_models(app: FastAPI) -> dict[str, type[BaseModel]]:
    """The models of the document, by the name FastAPI gives them there (Page[DosePublic] ->
    Page_DosePublic_), found the way FastAPI finds them."""
    fields = get_fields_from_routes(list(app.routes))
    names = get_model_name_map(get_flat_models_from_fields(fields, known_models=set()))
    models = {name: model for model, name in names.items() if issubclass(model, BaseModel)}
    extra: list[type[BaseModel]] = [Problem, ProblemFieldError, FhirBundle, FhirBundleEntry]
    return {**models, **{model.__name__: model for model in extra}}


def _restore_examples(schemas: dict[str, Any], models: dict[str, type[BaseModel]]) -> None:
    """The examples as the models hold them. FastAPI writes the document without null values, which
    leaves an example without its required nullable fields (`"note": null`): invalid for its model."""
    for name, model in models.items():
        for mode, key in (
            ("validation", name),
            ("validation", f"{name}-Input"),
            ("serialization", f"{name}-Output"),
        ):
            if key in schemas and "examples" in schemas[key]:
                schemas[key]["examples"] = model.model_json_schema(mode=mode)["examples"]  # type: ignore[arg-type]
