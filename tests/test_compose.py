"""docker-compose.yml and the image as an operator runs them: replicas behind a proxy, Redis, workers
with a health check of their own, and a build context without the developer's files."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_api_replicas_sit_behind_the_proxy_with_shared_counters() -> None:
    services = _compose()["services"]
    assert {"db", "redis", "migrate", "api", "proxy", "worker"} <= set(services)
    api = services["api"]
    assert "ports" not in api, "a fixed host port stops `--scale api=N`"
    assert api["environment"]["SYMPTRACK_REDIS_URL"].startswith("redis://redis:")
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert sorted(services["proxy"]["ports"]) == ["443:443", "80:80"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_pass $api" in nginx and "resolver 127.0.0.11" in nginx  # follows the replicas


def test_every_long_running_service_has_its_own_health_check() -> None:
    services = _compose()["services"]
    for name in ("db", "redis", "proxy", "worker"):
        assert services[name]["healthcheck"]["test"], name
    worker = services["worker"]
    # The image's check calls the API's port, which a worker doesn't have.
    assert "8000" not in " ".join(worker["healthcheck"]["test"])
    heartbeat = worker["environment"]["SYMPTRACK_WORKER_HEARTBEAT_FILE"]
    assert heartbeat in " ".join(worker["healthcheck"]["test"])
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_the_image_is_a_plain_install_run_by_an_unprivileged_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -e" not in dockerfile
    assert "\nUSER symptrack" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1 :], "everything is left out but what the build names"
    assert not any(line.startswith("!") and (".venv" in line or "tests" in line) for line in ignored)


def _compose_command() -> list[str] | None:
    """docker-compose (Debian's package, which .ci/run installs), else a docker with its compose plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_config_validates_where_the_tool_exists() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose here: the YAML tests above still hold")
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "p",
        "SYMPTRACK_SECRET_KEY": "k",
        "SYMPTRACK_WEBHOOK_SECRET_KEYS": '["k"]',
    }
    checked = subprocess.run(
        [*command, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr


def test_compose_refuses_to_start_without_each_secret_where_the_tool_exists() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose here: test_no_default_database_password checks the YAML")
    full = {"POSTGRES_PASSWORD": "p", "SYMPTRACK_SECRET_KEY": "k", "SYMPTRACK_WEBHOOK_SECRET_KEYS": '["k"]'}
    for missing in full:
        env = {k: v for k, v in {**os.environ, **full}.items() if k != missing}
        checked = subprocess.run(
            [*command, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode != 0 and missing in checked.stderr, missing


# --- the proxy in front (issue 25, finding 6) ------------------------------------------------------


def _nginx_servers() -> list[str]:
    """The `server { ... }` blocks of deploy/nginx.conf, comments removed."""
    text = "\n".join(
        line.split("#", 1)[0] for line in (ROOT / "deploy" / "nginx.conf").read_text().splitlines()
    )
    servers, depth, start = [], 0, None
    for match in re.finditer(r"server\s*\{|\{|\}", text):
        if match.group().startswith("server") and depth == 0:
            start = match.end()
        if match.group().endswith("{"):
            depth += 1
        else:
            depth -= 1
            if depth == 0 and start is not None:
                servers.append(text[start : match.start()])
                start = None
    return servers


def _directives(block: str) -> list[str]:
    return [" ".join(d.split()) for d in re.split(r"[;{}]", block) if d.strip()]


def test_tls_ends_at_the_proxy_and_port_80_only_redirects() -> None:
    servers = _nginx_servers()
    tls = [s for s in servers if "listen 443 ssl" in _directives(s)]
    plain = [s for s in servers if "listen 80" in _directives(s)]
    assert len(tls) == 1 and len(plain) == 1 and len(servers) == 2
    directives = _directives(tls[0])
    assert "ssl_certificate /etc/nginx/certs/fullchain.pem" in directives
    assert "ssl_certificate_key /etc/nginx/certs/privkey.pem" in directives
    assert "ssl_protocols TLSv1.2 TLSv1.3" in directives
    assert "proxy_pass $api" in directives
    # Port 80 reaches no API: a redirect to the same address over HTTPS, and nothing else.
    redirect = _directives(plain[0])
    assert "return 301 https://$host$request_uri" in redirect
    assert not any(d.startswith(("proxy_pass", "fastcgi_pass", "root")) for d in redirect)
    proxy = _compose()["services"]["proxy"]
    assert "./deploy/certs:/etc/nginx/certs:ro" in proxy["volumes"]
    assert "https://" in " ".join(proxy["healthcheck"]["test"])


def test_the_proxy_sets_x_forwarded_for_to_the_address_it_saw() -> None:
    [tls] = [s for s in _nginx_servers() if "listen 443 ssl" in _directives(s)]
    directives = _directives(tls)
    assert "proxy_set_header X-Forwarded-For $remote_addr" in directives
    assert "proxy_set_header X-Forwarded-Proto https" in directives
    # Appending ($proxy_add_x_forwarded_for) kept what the client sent, which the API then believed.
    assert "proxy_add_x_forwarded_for" not in (ROOT / "deploy" / "nginx.conf").read_text()


def test_the_api_believes_x_forwarded_for_from_the_proxy_alone() -> None:
    compose = _compose()
    services = compose["services"]
    proxy_address = ipaddress.ip_address(services["proxy"]["networks"]["default"]["ipv4_address"])
    [subnet] = [ipaddress.ip_network(c["subnet"]) for c in compose["networks"]["default"]["ipam"]["config"]]
    assert proxy_address in subnet
    trusted = str(services["api"]["environment"]["SYMPTRACK_FORWARDED_ALLOW_IPS"])
    assert "*" not in trusted
    assert [ipaddress.ip_address(a.strip()) for a in trusted.split(",")] == [proxy_address]
    for name, service in services.items():  # no other container takes the proxy's address
        if name != "proxy":
            assert "networks" not in service or "ipv4_address" not in str(service["networks"]), name


def test_no_default_database_password() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", text)
    assert len(uses) >= 2, "the database and the API's URL both take it from the environment"
    assert all(use.startswith(":?") for use in uses), uses  # required, never a default
    services = _compose()["services"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_the_readme_says_how_the_local_certificate_is_made() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "deploy/self_signed_cert.py" in readme and "deploy/certs" in readme
    assert "POSTGRES_PASSWORD" in readme and "https://localhost" in readme
    tls_cert = _compose()["services"]["tls-cert"]
    assert "/opt/symptrack/self_signed_cert.py" in tls_cert["command"]
    assert _compose()["services"]["proxy"]["depends_on"]["tls-cert"]["condition"] == (
        "service_completed_successfully"
    )
