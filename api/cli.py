"""The `symptrack` command: serve, worker, migrate, create-admin, demo, listen, rotate-webhook-keys,
erase-patient."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import click

# The app, the database and the migrations are imported by the commands that use them, so
# `symptrack --help` and a command's --help start at once.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.settings import Settings

T = TypeVar("T")
logger = logging.getLogger("symptrack.serve")


def _settings() -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from api.observability import configure_logging
    from services.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:  # refused configuration, e.g. no secret key in production
        # Only the messages: pydantic's own text quotes the input, the secret key included.
        problems = [_setting_problem(error["loc"], error["msg"]) for error in exc.errors()]
        raise click.ClickException("invalid configuration: " + "; ".join(problems)) from None
    except SettingsError as exc:  # a list setting that is not JSON: its variable, never its value
        raise click.ClickException(f"invalid configuration: {_unparsable_setting(str(exc))}") from None
    configure_logging(settings.log_level)  # the level a .env file gives too
    return settings


def _setting_problem(loc: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    if not loc or message.startswith(name := f"SYMPTRACK_{str(loc[0]).upper()}"):
        return message  # it names the variable already
    return f"{name}: {message}"


def _unparsable_setting(message: str) -> str:
    # pydantic-settings says 'error parsing value for field "cors_origins" from source "..."'.
    field = re.search(r'field "(\w+)"', message)
    name = f"SYMPTRACK_{field.group(1).upper()}" if field else "a SYMPTRACK_ setting"
    return f'{name} must be JSON, e.g. ["first", "second"] for a list'


def _in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from services.database import create_engine, create_session_factory, session_scope

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with session_scope(create_session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@click.group()
def main() -> None:
    """symptrack: gabapentin side-effect and anxiety tracking for patients and their care teams."""
    from api.observability import configure_logging
    from services.settings import LogLevel

    # Logging is set up before the settings are read (a refused setting is said in a log line too);
    # a level the settings would refuse is refused here in the same words.
    level = os.environ.get("SYMPTRACK_LOG_LEVEL", "INFO").strip().upper()
    if level not in get_args(LogLevel):
        raise click.ClickException(
            "invalid configuration: SYMPTRACK_LOG_LEVEL must be one of " + ", ".join(get_args(LogLevel))
        )
    configure_logging(level)


@main.command()
@click.option(
    "--to",
    "target",
    default="head",
    show_default=True,
    metavar="REVISION",
    help="The revision to bring the schema to, up or down: an id such as 0009, head (the latest) or "
    "base (no schema: every table dropped).",
)
def migrate(target: str) -> None:
    """Bring the database schema to the latest revision, or upgrade or downgrade it to another.

    Downgrade before running an older release against the database; back it up first."""
    settings = _settings()  # a refused configuration is the only thing said
    from services.alerting.webhook_secrets import WebhookKeyError
    from services.platform import migrations

    try:
        move = migrations.migrate_to(settings, target)
    except (migrations.MigrationRefused, WebhookKeyError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(move.describe())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the delivery worker in this process.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="API processes (PostgreSQL only). With more than one, none of them runs the delivery worker: "
    "run `symptrack worker` beside them; and set SYMPTRACK_REDIS_URL, or rate limits and sign-in "
    "throttling count per process.",
)
def serve(host: str, port: int, no_worker: bool, workers: int) -> None:
    """Serve the API (an embedded SQLite database is migrated first).

    \b
    Stopping: on SIGTERM /readyz answers 503 at once and every request is still served for
    SYMPTRACK_SHUTDOWN_GRACE_SECONDS (10 s), so a load balancer stops sending here; then the process
    stops accepting, finishes the requests in flight (up to 30 s) and the delivery worker's sends,
    and exits 0. SIGINT (Ctrl-C), or a second SIGTERM, skips the grace (the requests in flight are
    still finished); one more signal stops without waiting for them. With --workers, each process
    drains alike."""
    settings = _settings()  # a refused configuration is the only thing said
    import uvicorn

    from api.app import create_app
    from api.drain import DrainingSupervisor, SignalledServer
    from services.platform import migrations

    if settings.is_sqlite:
        if workers > 1:
            raise click.ClickException("--workers above 1 needs PostgreSQL: SQLite is served by one process")
        migrations.upgrade(settings)
    if workers == 1:
        app = create_app(settings, run_worker=not no_worker, freeze_heap=True, drain_on_signals=True)
        server = SignalledServer(uvicorn.Config(app, host=host, port=port, **server_options(settings)))
        server.run()
        if not server.started:
            sys.exit(3)  # as uvicorn.run: it could not start (the port taken, the startup failed)
        return
    logger.warning(
        "%d API processes and no delivery worker among them: run `symptrack worker` for webhook alerts",
        workers,
    )
    if not settings.redis_url:
        logger.warning("SYMPTRACK_REDIS_URL is not set: each process counts rate limits and sign-ins alone")
    # Several processes: uvicorn imports the app in each (an import string and a factory); each one
    # drains on the SIGTERM uvicorn's supervisor passes on, and the supervisor waits for them.
    config = uvicorn.Config(
        "api.app:create_app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        **server_options(settings),
    )
    DrainingSupervisor(config, sockets=[config.bind_socket()]).run()


# Requests in flight when a served process stops get this long to finish (after the drain's grace):
# the longest wait a request can have for its fair share is 10 s by default, then its own work.
IN_FLIGHT_SECONDS = 30


def server_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the app: used by `serve`, and by the tests that start a real server."""
    trusted_proxies = settings.forwarded_allow_ips.strip()
    return {
        "log_level": settings.log_level.lower(),
        # Our JSON logging stays in charge (log_config=None); our middleware writes the access log.
        "log_config": None,
        "access_log": False,
        # No "server: uvicorn": the answers don't name the software behind them.
        "server_header": False,
        # X-Forwarded-For is believed only from the proxies an operator lists; by default from no
        # one, so a client cannot choose the address the sign-in throttle and rate limits count.
        "proxy_headers": bool(trusted_proxies),
        "forwarded_allow_ips": trusted_proxies,
        "timeout_graceful_shutdown": IN_FLIGHT_SECONDS,
    }


@main.command()
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve this worker's metrics (Prometheus text: its jobs, webhook sends, pool, memory and CPU) "
    "at http://HOST:PORT/metrics. Off by default.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="The address --metrics-port binds to."
)
def worker(metrics_port: int | None, metrics_host: str) -> None:
    """Run the delivery worker alone (any number, on any machine that reaches the database)."""
    from services.database import create_engine, create_session_factory
    from services.jobs import all_jobs
    from services.platform.worker import Worker

    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        background = Worker(create_session_factory(engine), settings, all_jobs())
        if metrics_port is not None:
            _serve_worker_metrics(metrics_host, metrics_port, engine, background)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, background.stop)
        try:
            await background.run()
        finally:
            await engine.dispose()

    asyncio.run(run())


def _serve_worker_metrics(host: str, port: int, engine: Any, background: Any) -> None:
    from services.platform.process_metrics import serve_worker_metrics

    try:
        server, _ = serve_worker_metrics(host, port, engine.sync_engine.pool, background)
    except OSError as exc:  # the port taken: say so in one line, not a traceback
        raise click.ClickException(f"--metrics-port {port}: {exc.strerror or exc}") from None
    # The port actually bound (0 asks for a free one), for whoever started this process.
    logger.info("worker metrics at http://%s:%d/metrics", host, server.server_port)


@main.command("create-admin")
@click.option("--email", required=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters. Asked for when not given (a --password on the command line is visible "
    "in `ps` and kept in the shell's history).",
)
@click.option("--organization", required=True, help="Created when no organization has this name.")
@click.option("--name", default="Administrator", show_default=True)
def create_admin(email: str, password: str, organization: str, name: str) -> None:
    """Create an organization's administrator (and the organization when it is new)."""
    from models.accounts import Role
    from services.accounts.users import create_organization, create_user, find_organization_by_name
    from services.errors import DomainError

    settings = _settings()

    async def work(session: AsyncSession) -> str:
        org = await find_organization_by_name(session, organization)
        if org is None:
            org = await create_organization(session, organization)
        user = await create_user(
            session,
            organization_id=org.id,
            email=email,
            name=name,
            role=Role.admin,
            password=password,
        )
        return f"admin {user.email} created in organization {org.name!r} ({org.id})"

    try:
        click.echo(_in_session(settings, work))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc


@main.command()
@click.option(
    "--webhook-url",
    help="Also register a webhook endpoint for the demo organization at this URL (urgent flags: "
    "created, escalated, reopened, unacknowledged), e.g. a `symptrack listen` receiver at "
    "http://127.0.0.1:8787/, and print "
    "its secret. A local http URL needs SYMPTRACK_WEBHOOK_ALLOW_HTTP and "
    "SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS set to true, here and for `serve` (`make run-alerts`).",
)
def demo(webhook_url: str | None) -> None:
    """Load a demo organization with staff and patients (once; a second run changes nothing)."""
    from services.demo.loader import demo_steps, load_demo

    settings = _settings()
    if settings.environment == "production":
        raise click.ClickException("demo data has known passwords: refused in production")
    with click.progressbar(length=demo_steps(), label="Loading demo data", file=sys.stderr) as bar:
        summary = _in_session(settings, lambda session: load_demo(session, settings, bar.update))
    if not summary.created:
        click.echo(f"The demo organization {summary.organization!r} is already loaded.")
    click.echo(
        "\nSign in at POST /v1/auth/token (or the Authorize button at /docs) with:\n"
        f"  admin     {summary.admin_email}\n"
        f"  provider  {summary.provider_email}\n"
        f"  patient   {summary.patient_emails[0]} (and {len(summary.patient_emails) - 1} more)\n"
        f"  password  {summary.password} (for every demo account)"
    )
    if webhook_url:
        _register_demo_webhook(settings, webhook_url)


def _register_demo_webhook(settings: Settings, url: str) -> None:
    from urllib.parse import urlsplit

    from services.demo.alerts import register_demo_endpoint
    from services.errors import DomainError

    try:
        endpoint = _in_session(settings, lambda session: register_demo_endpoint(session, settings, url))
    except DomainError as exc:
        hint = ""
        if not (settings.webhook_allow_http and settings.webhook_allow_private_networks):
            hint = (
                ". For a receiver on this machine, set SYMPTRACK_WEBHOOK_ALLOW_HTTP=true and "
                "SYMPTRACK_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true for `symptrack demo` and `symptrack serve` "
                "(`make run-alerts` does)"
            )
        raise click.ClickException(f"--webhook-url {url}: {exc}{hint}") from exc
    state = "registered" if endpoint.created else "already registered"
    port = f" --port {urlsplit(url).port}" if urlsplit(url).port else ""
    click.echo(
        f"\nWebhook endpoint {state} for the demo organization: {endpoint.url}\n"
        f"  events    {', '.join(endpoint.events)} (severity {endpoint.min_severity} and above)\n"
        f"  secret    {endpoint.secret}\n"
        f"Watch its alerts arrive: symptrack listen{port} --secret {endpoint.secret}"
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="0: any free port"
)
@click.option(
    "--secret",
    envvar="SYMPTRACK_LISTEN_SECRET",
    help="The endpoint's whsec_... signing secret. Prefer SYMPTRACK_LISTEN_SECRET or --secret-file: "
    "a --secret on the command line is visible to every user of the machine in `ps`.",
)
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A file whose first line is the whsec_... secret (kept out of `ps`).",
)
@click.option(
    "--demo",
    "from_demo",
    is_flag=True,
    help="Take the secret of the demo organization's endpoint at http://HOST:PORT/ from the database "
    "(registered by `symptrack demo --webhook-url`).",
)
def listen(host: str, port: int, secret: str | None, secret_file: str | None, from_demo: bool) -> None:
    """Receive webhook deliveries here: verify each signature and print what arrived (Ctrl-C stops).
    A delivery whose webhook-id was already accepted (a replay, or a retry) is answered 200 and
    printed as a duplicate, not as a new alert."""
    from api.listen import make_server, read_secret_file, webhook_for

    if from_demo:
        secret = _demo_webhook_secret(f"http://{host}:{port}/")
    elif secret_file:
        try:
            secret = read_secret_file(secret_file)
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter("cannot read it", param_hint="--secret-file") from exc
    if not secret:
        raise click.UsageError(
            "give SYMPTRACK_LISTEN_SECRET=whsec_..., --secret-file PATH, --secret whsec_... (visible in ps), "
            "or --demo"
        )
    try:
        webhook = webhook_for(secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--secret-file" if secret_file else "--secret") from exc

    def echo(text: str) -> None:
        click.echo(text)
        sys.stdout.flush()  # at once, also into a pipe

    try:
        server = make_server(host, port, webhook, echo)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    echo(f"Listening on http://{host}:{server.server_address[1]}/ for signed webhook deliveries")
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops it as Ctrl-C does
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        server.server_close()


def _stop(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _demo_webhook_secret(url: str) -> str:
    from services.demo.alerts import demo_endpoint

    settings = _settings()
    if settings.environment == "production":
        raise click.ClickException("--demo reads the demo organization's endpoint: refused in production")
    from sqlalchemy.exc import DBAPIError

    try:
        endpoint = _in_session(settings, lambda session: demo_endpoint(session, settings, url))
    except DBAPIError:  # not migrated yet, or not reachable; the driver's text may quote SQL
        endpoint = None
    if endpoint is None:
        raise click.ClickException(
            f"the demo organization has no webhook endpoint at {url} in this database: "
            f"run `symptrack demo --webhook-url {url}` first (`make run-alerts` does)"
        )
    return endpoint.secret


@main.command("rotate-webhook-keys")
def rotate_webhook_keys() -> None:
    """Re-encrypt every stored webhook secret with the first of SYMPTRACK_WEBHOOK_SECRET_KEYS.

    Rotation: put the new key first in the list (keep the old one after it) on every process, run this,
    then drop the old key. Webhook receivers notice nothing: their secrets stay the same."""
    from services.alerting import webhook_secrets

    settings = _settings()
    try:
        count = _in_session(settings, lambda session: webhook_secrets.reencrypt_all(session, settings))
    except webhook_secrets.WebhookKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{count} webhook endpoint(s) re-encrypted with the first key")


@main.command("erase-patient")
@click.argument("patient_id", type=click.UUID)
@click.option(
    "--operator",
    required=True,
    help="The email of the admin of the patient's organization who asked for the erasure: the audit "
    "trail names them.",
)
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation.")
def erase_patient(patient_id: uuid.UUID, operator: str, yes: bool) -> None:
    """Erase a patient where the law requires it: their entries, flags, regimens, account, sessions
    and the alerts that carry their data, in one transaction. The audit trail (ids, no health data)
    stays, with one more row saying who erased them. This cannot be undone."""
    from services.accounts.erasure import erase_patient as erase
    from services.errors import DomainError

    settings = _settings()
    if not yes:
        click.confirm(
            f"Erase patient {patient_id} and everything recorded about them? This cannot be undone",
            abort=True,
        )
    try:
        erased = _in_session(settings, lambda session: erase(session, patient_id, operator))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"patient {patient_id} erased; removed:")
    for line in erased.lines():
        click.echo(f"  {line}")
