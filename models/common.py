"""Schemas shared by every domain."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; pass `next_cursor` back as `?cursor=` for the next one (null: no more)."""

    # Each Page[Item] says what it is and shows the item model's own example, on a page with a next one.
    model_config = ConfigDict(json_schema_extra=lambda schema, cls: _page_schema(schema, cls))

    items: list[T]
    next_cursor: str | None = Field(default=None)


def _page_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    schema.setdefault("description", Page.__doc__)
    args = cls.__pydantic_generic_metadata__["args"]
    if not (args and isinstance(args[0], type) and issubclass(args[0], BaseModel)):
        return
    extra = args[0].model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(examples, list) and examples:
        schema["examples"] = [{"items": examples[:1], "next_cursor": "eyJrIjpbIjIwMjYtMDUtMDQiXX0"}]
