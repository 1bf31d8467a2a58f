"""docker-compose.yml and the image as an operator runs them: replicas behind a proxy, Redis, workers
with a health check of their own, and a build context without the developer's files."""

from __future__ import annotations

import os
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
    assert services["proxy"]["ports"] == ["8000:8080"]
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
    env = {**os.environ, "SYMPTRACK_SECRET_KEY": "x" * 48, "SYMPTRACK_WEBHOOK_SECRET_KEYS": '["k"]'}
    checked = subprocess.run(
        [*command, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
