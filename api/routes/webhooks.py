"""Alerting webhook endpoints and their deliveries (admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from api.deps import CursorParam, Limit, SignedIn
from api.errors import problem_responses
from models.common import Page
from models.webhooks import (
    DeliveryPublic,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    PingAnswer,
)
from services.alerting import endpoints as endpoints
from services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
deliveries_router = APIRouter(prefix="/v1/webhook-deliveries", tags=["webhooks"])
BY_ID = problem_responses(401, 404)


@router.post(
    "",
    summary="Add an endpoint; the answer shows its signing secret this once",
    status_code=201,
    response_model=EndpointWithSecret,
    responses=problem_responses(401, 403),
)
async def create(body: EndpointCreate, signed_in: SignedIn) -> EndpointWithSecret:
    """Where the organization's flag alerts go: an https URL on a public address (by default), the
    events, and the least severity wanted. The answer's `secret` signs every delivery (Standard
    Webhooks) and is shown this once."""
    return await endpoints.create_endpoint(signed_in.session, signed_in.settings, signed_in.caller, body)


@router.get(
    "",
    summary="The organization's endpoints",
    response_model=list[EndpointPublic],
    responses=problem_responses(401, 403),
)
async def list_all(signed_in: SignedIn) -> list[EndpointPublic]:
    """The organization's webhook endpoints, without their secrets."""
    return await endpoints.list_endpoints(signed_in.session, signed_in.caller)


@router.get("/{endpoint_id}", summary="One endpoint", response_model=EndpointPublic, responses=BY_ID)
async def get_one(endpoint_id: uuid.UUID, signed_in: SignedIn) -> EndpointPublic:
    """One endpoint of the organization, without its secret."""
    return endpoints.to_public(
        await endpoints.endpoint_in_scope(signed_in.session, signed_in.caller, endpoint_id)
    )


@router.patch(
    "/{endpoint_id}",
    summary="Change an endpoint, or set `enabled`",
    response_model=EndpointPublic,
    responses=BY_ID,
)
async def update(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    signed_in: SignedIn,
) -> EndpointPublic:
    """Only the fields sent change. `enabled: true` turns back on an endpoint that was disabled (by an
    admin, a 410 Gone, or days of failures)."""
    return await endpoints.update_endpoint(
        signed_in.session, signed_in.settings, signed_in.caller, endpoint_id, body
    )


@router.delete(
    "/{endpoint_id}", summary="Remove an endpoint and its deliveries", status_code=204, responses=BY_ID
)
async def delete(endpoint_id: uuid.UUID, signed_in: SignedIn) -> Response:
    """Removes the endpoint and its deliveries: those still pending are not sent."""
    await endpoints.delete_endpoint(signed_in.session, signed_in.caller, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="A new secret; the old one keeps signing for 24 hours",
    response_model=EndpointWithSecret,
    responses=BY_ID,
)
async def rotate(endpoint_id: uuid.UUID, signed_in: SignedIn) -> EndpointWithSecret:
    """A new signing secret, shown this once. For 24 hours deliveries carry a signature with each
    secret, so the receiver can switch over."""
    return await endpoints.rotate_secret(signed_in.session, signed_in.settings, signed_in.caller, endpoint_id)


@router.post(
    "/{endpoint_id}/ping",
    summary="Queue a webhook.ping event to this endpoint",
    status_code=202,
    response_model=PingAnswer,
    responses=BY_ID,
)
async def ping(endpoint_id: uuid.UUID, signed_in: SignedIn) -> PingAnswer:
    """Queues a `webhook.ping` event to this endpoint only: a way to check that the receiver
    verifies and answers. Follow it at .../deliveries."""
    return await endpoints.ping(signed_in.session, signed_in.caller, endpoint_id)


@router.get(
    "/{endpoint_id}/deliveries",
    summary="Deliveries to this endpoint, oldest first",
    response_model=Page[DeliveryPublic],
    responses=BY_ID,
)
async def deliveries(
    endpoint_id: uuid.UUID,
    signed_in: SignedIn,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Page[DeliveryPublic]:
    """Every delivery to this endpoint, oldest first: its status, attempts and last answer."""
    return await endpoints.list_deliveries(signed_in.session, signed_in.caller, endpoint_id, limit, cursor)


@deliveries_router.post(
    "/{delivery_id}/retry",
    summary="Queue a dead or failed delivery again",
    status_code=202,
    response_model=DeliveryPublic,
    responses=problem_responses(401, 404, 409),
)
async def retry(delivery_id: uuid.UUID, signed_in: SignedIn) -> DeliveryPublic:
    """Sends a dead or failed delivery again, at once, with the retry schedule starting over. A
    delivery that succeeded or is pending answers 409."""
    return await endpoints.retry_delivery(signed_in.session, signed_in.caller, delivery_id)
