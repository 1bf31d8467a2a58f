"""Managing an organization's webhook endpoints (admins only: anyone else sees none of them)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models.accounts import Role
from models.base import utcnow
from models.common import Page
from models.flags import Severity
from models.webhooks import (
    DeliveryPublic,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    PingAnswer,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.accounts.access import Caller, require_role
from services.alerting import outbox, webhook_secrets
from services.alerting.signing import new_secret
from services.alerting.url_safety import UnsafeUrl, check_url
from services.errors import Conflict, FieldError, NotFound, ValidationFailed
from services.localtime import utc
from services.pagination import Cursor, page_of
from services.platform import wakeup
from services.settings import Settings

ROTATION_OVERLAP = timedelta(hours=24)


def readable_endpoints(caller: Caller) -> Any:
    """An admin's organization's endpoints; nothing for anyone else (their ids answer 404)."""
    statement = select(WebhookEndpoint).where(col(WebhookEndpoint.organization_id) == caller.organization_id)
    if caller.role != Role.admin:
        statement = statement.where(col(WebhookEndpoint.id).is_(None))
    return statement


async def endpoint_in_scope(session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint: WebhookEndpoint | None = (
        (await session.execute(readable_endpoints(caller).where(col(WebhookEndpoint.id) == endpoint_id)))
        .scalars()
        .first()
    )
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def to_public(endpoint: WebhookEndpoint) -> EndpointPublic:
    return EndpointPublic(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        min_severity=Severity(endpoint.min_severity),
        description=endpoint.description,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        created_at=utc(endpoint.created_at),
        updated_at=utc(endpoint.updated_at),
    )


async def _checked_url(url: str, settings: Settings) -> str:
    try:
        await check_url(url, settings)
    except UnsafeUrl as exc:
        raise ValidationFailed([FieldError(("body", "url"), str(exc))]) from exc
    return url


async def create_endpoint(
    session: AsyncSession, settings: Settings, caller: Caller, data: EndpointCreate
) -> EndpointWithSecret:
    require_role(caller, Role.admin)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        organization_id=caller.organization_id,
        url=await _checked_url(data.url, settings),
        events=list(dict.fromkeys(data.events)),
        min_severity=data.min_severity.value,
        description=data.description,
        secret=webhook_secrets.encrypt(settings, secret),
    )
    session.add(endpoint)
    await session.flush()
    return EndpointWithSecret(**to_public(endpoint).model_dump(), secret=secret)


async def list_endpoints(session: AsyncSession, caller: Caller) -> list[EndpointPublic]:
    require_role(caller, Role.admin)
    rows = await session.execute(readable_endpoints(caller).order_by(col(WebhookEndpoint.created_at)))
    return [to_public(e) for e in rows.scalars()]


async def update_endpoint(
    session: AsyncSession, settings: Settings, caller: Caller, endpoint_id: uuid.UUID, data: EndpointUpdate
) -> EndpointPublic:
    endpoint = await endpoint_in_scope(session, caller, endpoint_id)
    changes = data.model_dump(exclude_unset=True)
    for field in ("url", "events", "min_severity", "enabled"):
        if field in changes and changes[field] is None:
            raise ValidationFailed([FieldError(("body", field), "may not be null")])
    if "url" in changes:
        endpoint.url = await _checked_url(changes["url"], settings)
    if "events" in changes:
        endpoint.events = list(dict.fromkeys(changes["events"]))
    if "min_severity" in changes:
        endpoint.min_severity = Severity(changes["min_severity"]).value
    if "description" in changes:
        endpoint.description = changes["description"]
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
        if endpoint.enabled:
            # Re-enabled by a person: the failure history starts over.
            endpoint.disabled_reason, endpoint.failing_since = None, None
        else:
            endpoint.disabled_reason = "disabled by an administrator"
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    await session.flush()
    return to_public(endpoint)


async def delete_endpoint(session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID) -> None:
    endpoint = await endpoint_in_scope(session, caller, endpoint_id)
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, settings: Settings, caller: Caller, endpoint_id: uuid.UUID
) -> EndpointWithSecret:
    """A new secret; the old one keeps signing beside it for 24 hours, so receivers can switch over.
    Only the new secret is shown, this once; both are stored encrypted."""
    endpoint = await endpoint_in_scope(session, caller, endpoint_id)
    now = utcnow()
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = webhook_secrets.encrypt(settings, secret)
    endpoint.updated_at = now
    session.add(endpoint)
    await session.flush()
    return EndpointWithSecret(**to_public(endpoint).model_dump(), secret=secret)


async def ping(session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID) -> PingAnswer:
    endpoint = await endpoint_in_scope(session, caller, endpoint_id)
    event, delivery = await outbox.ping_event(session, endpoint)
    return PingAnswer(event_id=event.id, delivery_id=delivery.id)


def delivery_public(delivery: WebhookDelivery) -> DeliveryPublic:
    done = delivery.status in ("succeeded", "dead")
    return DeliveryPublic(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        next_attempt_at=None if done else utc(delivery.next_attempt_at),
        last_error=delivery.last_error,
        created_at=utc(delivery.created_at),
    )


async def list_deliveries(
    session: AsyncSession, caller: Caller, endpoint_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[DeliveryPublic]:
    endpoint = await endpoint_in_scope(session, caller, endpoint_id)
    statement = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    rows, next_cursor = await page_of(
        session,
        statement,
        Cursor.decode(cursor),
        limit,
        time_column=col(WebhookDelivery.created_at),
        id_column=col(WebhookDelivery.id),
        cursor_of=lambda row: Cursor(row[0].created_at, row[0].id),
    )
    return Page(items=[delivery_public(row[0]) for row in rows], next_cursor=next_cursor)


async def retry_delivery(session: AsyncSession, caller: Caller, delivery_id: uuid.UUID) -> DeliveryPublic:
    """Queue a dead or failed delivery again, at once, with the retry schedule starting over."""
    row = (
        (
            await session.execute(
                select(WebhookDelivery)
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
                .where(
                    col(WebhookDelivery.id) == delivery_id,
                    col(WebhookEndpoint.id).in_(
                        readable_endpoints(caller).with_only_columns(col(WebhookEndpoint.id))
                    ),
                )
                .with_for_update(of=WebhookDelivery)
            )
        )
        .scalars()
        .first()
    )
    if row is None:
        raise NotFound("No such delivery.")
    if row.status not in ("dead", "failed"):
        raise Conflict(f"Only a dead or failed delivery can be retried; this one is {row.status}.")
    now = utcnow()
    row.status, row.schedule_step, row.next_attempt_at, row.lease_expires_at = "pending", 0, now, None
    row.updated_at = now
    session.add(row)
    await session.flush()
    await wakeup.announce(session)
    return delivery_public(row)
