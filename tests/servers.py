"""The app on a real uvicorn server, in a thread, set up exactly as `symptrack serve` sets it up."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from api.cli import server_options


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serves `app` on a free loopback port (its lifespan included) and yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port meanwhile
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, **server_options(app.state.settings)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:  # a flag the server sets once it listens
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start within 30 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
