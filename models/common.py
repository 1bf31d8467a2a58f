"""Schemas shared by every domain."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; pass `next_cursor` back as `?cursor=` for the next one (null: no more)."""

    items: list[T]
    next_cursor: str | None = Field(default=None)
