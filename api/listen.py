"""`symptrack listen`: a local webhook receiver for trying alerts, in the spirit of `stripe listen`.

Every delivery is verified with the Standard Webhooks library: a good signature answers 200, a bad one
(or one too old) 400, which the delivery worker retries as it would against a clinic's receiver. Each
delivery is printed in a few readable lines.

A verified delivery whose `webhook-id` was already accepted is a duplicate: a replay of captured bytes
within the signature's 5-minute tolerance, or the sender's retry of a message whose 200 it never got
(the id is the same on every retry). The Standard Webhooks specification has receivers dedupe by
`webhook-id` and acknowledge what they already have, so it answers 200 (a 409 or any non-2xx would
only make the sender retry it for a day) and prints one line saying "duplicate", never the alert again.

For a developer's machine: it keeps nothing on disk and listens on loopback unless told otherwise.
The standard library's HTTP server is enough for one developer's alerts, and starts at once.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

# Our deliveries are a few hundred bytes; this refuses a stray upload without reading it.
MAX_BODY_BYTES = 1 << 20
Echo = Callable[[str], None]
# The ids of accepted deliveries, remembered this many at most: far more than arrive within the
# signatures' 5-minute tolerance, beyond which a replay fails verification anyway.
REMEMBERED_IDS = 10_000


class SeenIds:
    """The webhook-ids already accepted, the oldest forgotten first; safe across handler threads."""

    def __init__(self, limit: int = REMEMBERED_IDS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def first_time(self, webhook_id: str) -> bool:
        """True the first time an id is seen (and remembers it); False for a duplicate."""
        with self._lock:
            if webhook_id in self._ids:
                self._ids.move_to_end(webhook_id)
                return False
            self._ids[webhook_id] = None
            if len(self._ids) > self._limit:
                self._ids.popitem(last=False)
            return True


def read_secret_file(path: str) -> str:
    """The secret from a file (its first line, surrounding whitespace dropped): kept out of `ps`."""
    with open(path, encoding="utf-8") as handle:
        return handle.readline().strip()


def webhook_for(secret: str) -> Webhook:
    """The verifier for a `whsec_...` secret; ValueError when it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("a webhook secret starts with whsec_ (as the endpoint's creation answer shows it)")
    try:
        return Webhook(secret)
    except Exception as exc:  # the library's own error for a secret that is not base64
        raise ValueError("the webhook secret is not valid base64 after whsec_") from exc


def _when(unix_seconds: str | None) -> str:
    try:
        return datetime.fromtimestamp(int(unix_seconds or ""), UTC).isoformat().replace("+00:00", "Z")
    except ValueError:
        return f"{unix_seconds!r} (not unix seconds)"


def describe(payload: Any) -> list[str]:
    """The lines that say what a verified delivery carries."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return ["  body        " + json.dumps(payload)[:500]]
    data = payload["data"]
    flag = data.get("flag")
    if not isinstance(flag, dict):
        return [f"  {key:<11} {value}" for key, value in data.items()]
    lines = [
        f"  flag        {flag.get('rule')}  severity {flag.get('severity')}  status {flag.get('status')}",
        f"  reason      {flag.get('reason')}",
    ]
    if flag.get("observed_at"):
        lines.append(f"  observed    {flag['observed_at']}")
    if flag.get("symptom_code"):
        lines.append(f"  symptom     {flag['symptom_code']}")
    lines += [f"  patient_id  {data.get('patient_id')}", f"  flag_id     {flag.get('id')}"]
    return lines


def receive(
    webhook: Webhook, body: bytes, headers: dict[str, str], seen: SeenIds | None = None
) -> tuple[int, list[str]]:
    """The status to answer and the lines to print for one request."""
    webhook_id = headers.get("webhook-id", "(none)")
    head = f"  webhook-id  {webhook_id}\n  timestamp   {_when(headers.get('webhook-timestamp'))}"
    try:
        webhook.verify(body, headers)
    except Exception as exc:  # every failure to verify: missing headers, bad or stale signature
        return 400, [f"--> signature INVALID: {exc}; answered 400", head]
    # Only a verified id is remembered: nobody without the secret can make a real alert a "duplicate".
    if seen is not None and not seen.first_time(webhook_id):
        return 200, [
            f"--> duplicate of an accepted delivery (webhook-id {webhook_id}), not shown again; answered 200"
        ]
    try:
        payload = json.loads(body)
    except ValueError:
        return 200, ["--> verified, but the body is not JSON; answered 200", head]
    event = payload.get("type", "(no type)") if isinstance(payload, dict) else "(no type)"
    return 200, [f"--> {event}  signature verified; answered 200", head, *describe(payload)]


def make_server(host: str, port: int, webhook: Webhook, echo: Echo) -> ThreadingHTTPServer:
    """A server that verifies and prints every POST; `echo` prints (and flushes) a block of lines."""
    lock = threading.Lock()  # one delivery's lines together, even when two arrive at once
    seen = SeenIds()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413)
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, lines = receive(webhook, body, headers, seen)
            with lock:
                echo("\n".join(lines) + "\n")  # a blank line ends each delivery's lines
            # Printed before answering: when the sender has its answer, the lines are out.
            self._answer(status)

        def do_GET(self) -> None:
            self._answer(405)

        def _answer(self, status: int) -> None:
            text = b"ok\n" if status == 200 else f"status {status}\n".encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass  # the lines above say what happened

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
