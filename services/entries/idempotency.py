"""Client ids make retries safe: the same id and content is the stored entry, other content is 409.
This module fingerprints the content; `services.entries.store` finds and inserts by it.

The content is fingerprinted after validation, with instants in UTC, so "08:00+02:00" and "06:00Z"
are the same content, while any change of value is not.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


def fingerprint(kind: str, patient_id: uuid.UUID, body: BaseModel) -> str:
    content = {"kind": kind, "patient_id": str(patient_id), "body": _canonical(body.model_dump())}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)
