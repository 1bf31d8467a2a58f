"""A statement that fails with patient text in its parameters: nothing of that text reaches a log line,
an error message or the answer, whatever the cause (a refused row, a string the driver can't encode).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import SessionDep
from api.observability import JsonFormatter
from models.entries import Dose
from services.database import session_scope
from services.platform.worker import RegisteredJob, Worker
from services.settings import Settings
from tests.log_guard import parameter_dumps

MARKER = "LEAKTEST1"
NOTE = f"{MARKER} I took extra because of suicidal thoughts"


async def store_refused_note(session: AsyncSession, how: str) -> None:
    """An INSERT the database refuses, carrying the note: a row without its required columns, or
    (how="surrogate") a lone surrogate, which asyncpg cannot encode and SQLite's driver refuses."""
    note = NOTE + ("\ud800" if how == "surrogate" else "")
    await session.execute(insert(Dose).values(id=uuid.uuid4(), note=note))


def leaks(records: list[logging.LogRecord]) -> list[str]:
    """Every record as production writes it and as Python's own formatter would, tracebacks included."""
    found = []
    for record in records:
        texts = [record.getMessage(), JsonFormatter().format(record), str(record.__dict__)]
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
        found += [f"{record.name}: {text[:300]}" for text in texts if MARKER in text]
    return found


@pytest.fixture
def probing_app(app: FastAPI) -> FastAPI:
    @app.post("/_probe/notes")
    async def store_note(session: SessionDep, how: str = "row") -> None:
        await store_refused_note(session, how)

    return app


@pytest.mark.parametrize("how", ["row", "surrogate"])
async def test_a_failing_statement_leaks_no_parameter_to_the_log_or_the_answer(
    probing_app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.NOTSET)
    response = await client.post(f"/_probe/notes?how={how}")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert MARKER not in response.text
    assert leaks(caplog.records) == []
    # Logged once, with the exception's type and a traceback to find the bug by.
    errors = [r for r in caplog.records if r.name == "symptrack.api" and r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = JsonFormatter().format(errors[0])
    assert '"exc_type": ' in line and "Traceback (most recent call last)" in line
    assert "store_refused_note" in line and "(message withheld)" in line


async def test_the_engine_hides_parameters_from_error_messages(app: FastAPI) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with session_scope(app.state.session_factory) as session:
            await store_refused_note(session, "row")
    message = str(raised.value)
    assert MARKER not in message and "[parameters:" not in message
    assert "hide_parameters" in message  # SQLAlchemy says they were left out


async def test_a_failing_worker_job_leaks_no_parameter(
    settings: Settings, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.NOTSET)
    started = asyncio.Event()

    async def leaky(factory: async_sessionmaker[AsyncSession], _settings: Settings) -> int:
        started.set()
        async with session_scope(factory) as session:
            await store_refused_note(session, "surrogate")
        return 1

    worker = Worker(app.state.session_factory, settings, jobs=[RegisteredJob("leaky", leaky, 3600)])
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), timeout=5)
    worker.stop()  # the round in flight ends, and is logged, before run() returns
    await asyncio.wait_for(task, timeout=5)
    assert leaks(caplog.records) == []
    failed = [r for r in caplog.records if r.getMessage().startswith("job leaky failed")]
    assert len(failed) == 1 and "Traceback" in str(getattr(failed[0], "traceback", ""))


def _record(exc: BaseException | None = None, msg: str = "failed") -> logging.LogRecord:
    exc_info: Any = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("probe", logging.ERROR, __file__, 1, msg, None, exc_info)


def test_the_suite_wide_guard_recognises_parameter_dumps() -> None:
    """The guard in conftest.py fails any test whose log holds one of these."""
    try:
        raise DBAPIError("INSERT INTO dose (note) VALUES (?)", (NOTE,), Exception("refused"))
    except DBAPIError as exc:
        assert set(parameter_dumps(_record(exc))) == {"[parameters: "}
    assert parameter_dumps(_record(msg="[generated in 0.00011s] ('a note',)")) != []
    assert parameter_dumps(_record(msg="invalid input for query argument $3: 'a note'")) != []
    hidden = DBAPIError("INSERT", (NOTE,), Exception("refused"), hide_parameters=True)
    assert parameter_dumps(_record(hidden)) == []
    assert parameter_dumps(_record(msg="request")) == []
