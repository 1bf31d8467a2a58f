"""Small builders for entry requests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def new_id() -> str:
    return str(uuid.uuid4())


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def dose(**fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "taken_at": ago(minutes=5), "dose_mg": 300, **fields}


def gad7(items: list[int], **fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "recorded_at": ago(minutes=5), "instrument": "gad7", "items": items, **fields}


def rating(score: int, **fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "recorded_at": ago(minutes=5), "instrument": "rating", "score": score, **fields}


def symptom(code: str, **attributes: Any) -> dict[str, Any]:
    return {"id": new_id(), "reported_at": ago(minutes=5), "code": code, **attributes}
