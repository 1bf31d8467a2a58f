"""How many statements each request sends to PostgreSQL, and which: the app in-process, one request
of each scenario through httpx's ASGI transport, every statement caught by an engine event.

Each statement is a round trip to the database and a pass through SQLAlchemy; BEGIN and COMMIT
(asyncpg sends them itself, outside the event) add two more per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event

from api.app import create_app
from services.settings import Settings


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    token: str
    body: Any = None


@dataclass(frozen=True)
class Count:
    name: str
    status: int
    statements: list[str]

    def markdown(self) -> str:
        lines = [
            f"`{self.name}` (status {self.status}): {len(self.statements)} statements + BEGIN/COMMIT",
            "",
        ]
        lines += [f"{n}. `{' '.join(s.split())[:110]}`" for n, s in enumerate(self.statements, 1)]
        return "\n".join(lines) + "\n"


async def count(settings: Settings, probes: list[Probe]) -> list[Count]:
    """Each probe is sent twice; the second (warm) one is counted."""
    app = create_app(settings)
    results = []
    async with app.router.lifespan_context(app):
        seen: list[str] = []

        def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)

        event.listen(app.state.engine.sync_engine, "before_cursor_execute", before)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for probe in probes:
                status = 0
                for body in probe.body if isinstance(probe.body, list) else [probe.body, probe.body]:
                    seen.clear()
                    response = await client.request(
                        probe.method,
                        probe.path,
                        json=body,
                        headers={"Authorization": f"Bearer {probe.token}"},
                    )
                    status = response.status_code
                results.append(Count(probe.name, status, list(seen)))
    return results
