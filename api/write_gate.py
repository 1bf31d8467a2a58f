"""Bulk writes wait for a slot, so urgent work does not wait behind them.

One process serves everything on one event loop, first come, first served: under a flood of doses or
sync batches, an urgent check-in's every step queues behind theirs. Doses and sync batches (the bulk
a phone sends) therefore run at most `SYMPTRACK_BULK_WRITE_SLOTS` at a time in this process; the
rest wait here, before their body is read, where waiting costs nothing. Check-ins, the other entries
and every read pass at once. A few slots keep the CPU busy (a write spends most of its time waiting
for the database), so the bulk loses no throughput, and a check-in finds a short queue.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

SYNC_PATH = "/v1/sync"
DOSES_SUFFIX = "/doses"


def is_bulk_write(scope: Scope) -> bool:
    if scope["type"] != "http" or scope.get("method") != "POST":
        return False
    path = str(scope.get("path", ""))
    return path == SYNC_PATH or (path.startswith("/v1/patients/") and path.endswith(DOSES_SUFFIX))


class BulkSlots:
    """The slots of one app (its /metrics reports how many requests wait for one)."""

    def __init__(self, slots: int) -> None:
        self.semaphore = asyncio.Semaphore(slots) if slots > 0 else None
        self.waiting = 0


class WriteGate:
    def __init__(self, app: ASGIApp, slots: BulkSlots) -> None:
        self.app = app
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        semaphore = self.slots.semaphore
        if semaphore is None or not is_bulk_write(scope):
            await self.app(scope, receive, send)
            return
        self.slots.waiting += 1
        try:
            await semaphore.acquire()
        finally:
            self.slots.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            semaphore.release()
