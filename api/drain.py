"""Draining a served process on SIGTERM, so a rolling restart drops no request.

On SIGTERM the process says it is leaving (`/readyz` answers 503, every answer closes its keep-alive
connection) and goes on serving everything for `shutdown_grace_seconds`, the time a load balancer
needs to see it and stop sending. Then it hands the signal to uvicorn, which stops accepting,
finishes the requests in flight, and runs the app's shutdown (the in-process worker finishes its
sends there). SIGINT (Ctrl-C), or a second SIGTERM, hands it over at once.

The handlers are the app's, installed by its lifespan in the process's main thread: so they work the
same whether uvicorn serves one process or supervises several (each child gets the SIGTERM).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("symptrack.serve")

Handler = Callable[[int, FrameType | None], Any] | int | None


class Drain:
    """Whether this process is leaving: read by /readyz and by every answer."""

    def __init__(self) -> None:
        self.draining = False


@contextmanager
def draining_on_signals(drain: Drain, grace_seconds: float) -> Iterator[None]:
    """While the app runs: SIGTERM drains for `grace_seconds`, then hands the signal to the server's
    own handler (the one in place when the app started: uvicorn's). Outside the main thread (a test's
    server in a thread) signals cannot be caught: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    server_handlers: dict[int, Handler] = {sig: signal.getsignal(sig) for sig in signals}
    handed_over = False
    grace_timer: asyncio.TimerHandle | None = None

    def hand_over(sig: int) -> None:
        nonlocal handed_over
        if handed_over:
            return
        handed_over = True
        if grace_timer is not None:
            grace_timer.cancel()
        for each in signals:
            loop.remove_signal_handler(each)
            signal.signal(each, server_handlers[each])  # a later signal goes to the server directly
        handler = server_handlers[sig]
        if callable(handler):
            handler(sig, None)  # uvicorn: stop accepting, finish what is in flight, shut down
        else:
            signal.raise_signal(sig)

    def on_term() -> None:
        nonlocal grace_timer
        if drain.draining or grace_seconds <= 0:
            drain.draining = True
            hand_over(signal.SIGTERM)
            return
        drain.draining = True
        logger.warning(
            "SIGTERM: draining (/readyz answers 503); serving %g s more, then finishing the requests in "
            "flight (another SIGTERM or SIGINT: now)",
            grace_seconds,
        )
        grace_timer = loop.call_later(grace_seconds, hand_over, signal.SIGTERM)

    def on_int() -> None:
        drain.draining = True
        hand_over(signal.SIGINT)

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_int)
    try:
        yield
    finally:
        if not handed_over:
            handed_over = True
            if grace_timer is not None:
                grace_timer.cancel()
            for each in signals:
                loop.remove_signal_handler(each)
                signal.signal(each, server_handlers[each])


class ClosingWhileDraining:
    """While draining, every answer carries `Connection: close`: a keep-alive client opens its next
    request elsewhere (through the balancer) instead of reusing a connection about to be closed,
    where a request sent just as it closes would be lost on the way."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.draining:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_closing)


class SignalledServer(uvicorn.Server):
    """uvicorn's server (`symptrack serve`, one process), except that a stop asked for by a signal
    exits 0: the app drained and shut down as asked, a success, not a death by the signal (uvicorn
    raises the signal again once stopped). A signal after the one that stopped it: stop at once,
    without waiting for the requests in flight."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


class DrainingSupervisor(Multiprocess):
    """uvicorn's supervisor of `serve --workers N`, which lets go of the listening socket as soon as it
    is asked to stop. The processes it started each hold the socket too, and drain on the SIGTERM it
    passes on: once the last of them closes it, new connections are refused. Were the supervisor's
    copy still open, the kernel would go on accepting connections that nobody serves, and reset them
    when the supervisor exits."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()
