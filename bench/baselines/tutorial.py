"""The tutorial way: sync FastAPI and SQLModel, as the FastAPI/SQLModel docs teach it
(`def` route, `Session` dependency, `model_validate`, `add`, `commit`, `refresh`).

FastAPI runs each sync route in its thread pool. The one change from the tutorial: the engine's pool
holds 32 connections, like the other servers, instead of the default 5 (+10 overflow).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlmodel import Session, SQLModel, create_engine

from models.entries import Dose

POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "32"))
engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_size=POOL_SIZE, max_overflow=0)


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
app = FastAPI()


class DoseCreate(SQLModel):
    id: uuid.UUID
    taken_at: datetime
    dose_mg: float
    medication: str | None = None
    status: str = "taken"
    scheduled_for: datetime | None = None
    note: str | None = None


class DosePublic(SQLModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    local_date: date
    taken_at: datetime
    dose_mg: float
    medication: str
    status: str


@app.post("/v1/patients/{patient_id}/doses", status_code=201, response_model=DosePublic)
def create_dose(patient_id: uuid.UUID, dose: DoseCreate, session: SessionDep) -> Dose:
    db_dose = Dose.model_validate(
        dose,
        update={
            "patient_id": patient_id,
            "local_date": dose.taken_at.date(),
            "content_hash": "tutorial",
            "medication": dose.medication or "gabapentin",
        },
    )
    session.add(db_dose)
    session.commit()
    session.refresh(db_dose)
    return db_dose


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
