"""An entry's row before it is stored: its columns as a plain mapping, what an INSERT takes as it is.

The recorder and /v1/sync build these from the validated request instead of the tables' SQLModel
objects: an ORM object runs instrumented attribute events and SQLModel's checks for every column it is
given, which made building 500 of them a third of a sync batch. A row reads like the model's object
(`row.taken_at`), and says which table it belongs to as the model does (`__tablename__`), so the rules
and the views read both alike.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Table
from sqlmodel import SQLModel

from models.entries import AnxietyScore, CheckIn, Dose, SymptomReport


class EntryRow:
    """The columns of one row of `model`'s table, every column given (none left to a default)."""

    __slots__ = ("values",)
    values: dict[str, Any]
    model: ClassVar[type[SQLModel]]
    __tablename__: ClassVar[str]

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.values:
            raise AttributeError(f"{type(self).__name__} has no column {name}")
        self.values[name] = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.values.get('id')})"

    @classmethod
    def table(cls) -> Table:
        table: Table = cls.model.__table__  # type: ignore[attr-defined]
        return table


class CheckInRow(EntryRow):
    __slots__ = ()
    model = CheckIn
    __tablename__ = "check_in"


class DoseRow(EntryRow):
    __slots__ = ()
    model = Dose
    __tablename__ = "dose"


class SymptomRow(EntryRow):
    __slots__ = ()
    model = SymptomReport
    __tablename__ = "symptom_report"


class AnxietyRow(EntryRow):
    __slots__ = ()
    model = AnxietyScore
    __tablename__ = "anxiety_score"


ROW_OF: dict[type[SQLModel], type[EntryRow]] = {
    row.model: row for row in (CheckInRow, DoseRow, SymptomRow, AnxietyRow)
}


def table_name(row: Any) -> str | None:
    """The table an entry belongs to, for a stored model object and a row alike."""
    return getattr(row, "__tablename__", None)
