"""`symptrack listen`: a local webhook receiver for trying alerts, in the spirit of `stripe listen`.

Every delivery is verified with the Standard Webhooks library: a good signature answers 200, a bad one
(or one too old) 400, which the delivery worker retries as it would against a clinic's receiver. Each
delivery is printed in a few readable lines. For a developer's machine: it keeps nothing and listens on
loopback unless told otherwise. The standard library's HTTP server is enough for one developer's
alerts, and starts at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

# Our deliveries are a few hundred bytes; this refuses a stray upload without reading it.
MAX_BODY_BYTES = 1 << 20
Echo = Callable[[str], None]


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


def receive(webhook: Webhook, body: bytes, headers: dict[str, str]) -> tuple[int, list[str]]:
    """The status to answer and the lines to print for one request."""
    webhook_id = headers.get("webhook-id", "(none)")
    head = f"  webhook-id  {webhook_id}\n  timestamp   {_when(headers.get('webhook-timestamp'))}"
    try:
        webhook.verify(body, headers)
    except Exception as exc:  # every failure to verify: missing headers, bad or stale signature
        return 400, [f"--> signature INVALID: {exc}; answered 400", head]
    try:
        payload = json.loads(body)
    except ValueError:
        return 200, ["--> verified, but the body is not JSON; answered 200", head]
    event = payload.get("type", "(no type)") if isinstance(payload, dict) else "(no type)"
    return 200, [f"--> {event}  signature verified; answered 200", head, *describe(payload)]


def make_server(host: str, port: int, webhook: Webhook, echo: Echo) -> ThreadingHTTPServer:
    """A server that verifies and prints every POST; `echo` prints (and flushes) a block of lines."""
    lock = threading.Lock()  # one delivery's lines together, even when two arrive at once

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413)
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, lines = receive(webhook, body, headers)
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
