"""docker/ cannot run here (no Docker engine): keep it honest by reading it. Every container
command must parse as a real `trendscope` command with real options, the image must be
multi-stage, slim, non-root and health-checked, and nginx must pass websocket upgrades."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from api.cli import app as cli_app
from core.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
# Variables read by something other than Settings (uvicorn, OpenTelemetry).
EXTERNAL_ENV = {"FORWARDED_ALLOW_IPS", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run our image (its ENTRYPOINT is `trendscope`)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith("trendscope") or "build" in svc
    }


def parse_cli(args: list[str]) -> Any:
    """Resolve `trendscope <args>` to its command and parse the options exactly as the CLI
    would (unknown commands or options, or values of the wrong type, raise)."""
    command: Any = typer.main.get_command(cli_app)
    ctx = command.make_context("trendscope", [], resilient_parsing=True)
    rest = list(args)
    while hasattr(command, "list_commands"):  # a group (typer's is not a click.Group subclass)
        assert rest, "a command group needs a subcommand"
        sub = command.get_command(ctx, rest[0])  # type: ignore[attr-defined]
        assert sub is not None, f"no such trendscope command: {rest[0]!r}"
        command, rest = sub, rest[1:]
        ctx = command.make_context(command.name or "", list(rest), parent=ctx)
    return ctx


def test_parse_cli_rejects_what_the_cli_rejects() -> None:
    with pytest.raises(AssertionError):
        parse_cli(["no-such-command"])
    # (typer vendors its own click: match on the messages, not on click's classes)
    with pytest.raises(Exception, match="No such option"):
        parse_cli(["api", "--no-such-option", "1"])
    with pytest.raises(Exception, match="valid integer"):
        parse_cli(["api", "--port", "not-a-number"])
    assert parse_cli(["tenants", "list"]).command.name == "list"


def test_every_app_service_runs_a_real_trendscope_command(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    assert {"migrate", "api-1", "api-2", "worker", "analytics"} <= set(services)
    seen = set()
    for name, svc in services.items():
        command = svc["command"]
        args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        ctx = parse_cli(args)
        seen.add(ctx.command.name)
        assert ctx.command.name, name
    assert {"migrate", "api", "worker", "analytics-worker"} <= seen
    assert parse_cli(["api", "--host", "0.0.0.0"]).params["host"] == "0.0.0.0"


def test_dockerfile_default_command_and_entrypoint(dockerfile: str) -> None:
    entrypoint = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", dockerfile, re.M)
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", dockerfile, re.M)
    assert entrypoint and cmd
    assert yaml.safe_load(entrypoint[1]) == ["trendscope"]
    pyproject = (DOCKER.parent / "pyproject.toml").read_text()
    assert 'trendscope = "api.cli:main"' in pyproject
    assert parse_cli(yaml.safe_load(cmd[1])).command.name == "api"


def test_dockerfile_is_multi_stage_slim_non_root_and_health_checked(dockerfile: str) -> None:
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.M)
    assert len(froms) >= 2, froms
    assert all(image.startswith("python:${PYTHON_VERSION}-slim") for image, _ in froms)
    assert re.search(r"^ARG PYTHON_VERSION=3\.11$", dockerfile, re.M)
    assert "pip wheel" in dockerfile
    assert re.search(r"COPY --from=|--mount=type=bind,from=builder", dockerfile)
    # the last USER before the end is not root
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    final_stage = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert "USER" in final_stage and "HEALTHCHECK" in final_stage
    healthcheck = final_stage[final_stage.index("HEALTHCHECK") :]
    assert "/healthz" in healthcheck.split("\n\n")[0] or "/healthz" in healthcheck


def test_compose_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "pgbouncer", "redis", "nginx"} <= set(services)
    bouncer = services["pgbouncer"]["environment"]
    assert bouncer["POOL_MODE"] == "transaction"
    for name, svc in app_services(compose).items():
        env = svc["environment"]
        url = env["DATABASE_URL"]
        if name == "migrate":
            assert "@postgres:" in url and env["DATABASE_PGBOUNCER"] == "false"
        else:
            # behind PgBouncer the statement cache must be off (design.md)
            assert f"@pgbouncer:{bouncer['LISTEN_PORT']}/" in url, name
            assert env["DATABASE_PGBOUNCER"] == "true", name
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert env["REDIS_URL"].startswith("redis://redis:")
        # every variable is one the app (Settings) or a known library reads
        fields = {f.upper() for f in Settings.model_fields}
        unknown = set(env) - fields - EXTERNAL_ENV
        assert not unknown, (name, unknown)
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in compose["volumes"], (name, source)
            else:
                assert (DOCKER / source).exists(), (name, source)


def test_api_replicas_and_graceful_stop(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api-1", "api-2"):
        ctx = parse_cli(services[name]["command"])
        assert ctx.params["host"] == "0.0.0.0" and ctx.params["workers"] == 1
        grace = int(str(services[name]["stop_grace_period"]).rstrip("s"))
        assert grace > ctx.params["graceful_timeout"] + (ctx.params["shutdown_delay"] or 0)
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])


def test_nginx_balances_both_replicas_and_upgrades_websockets(compose: dict[str, Any]) -> None:
    conf = (DOCKER / "nginx.conf").read_text()
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", conf)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", conf)
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade", conf)
    assert re.search(r"proxy_http_version\s+1\.1;", conf)
    upstreams = re.findall(r"^\s*server\s+([\w-]+):(\d+)", conf, re.M)
    assert {host for host, _ in upstreams} == {"api-1", "api-2"}
    for host, port in upstreams:
        assert host in compose["services"]
        assert parse_cli(compose["services"][host]["command"]).params["port"] == int(port)
    nginx = compose["services"]["nginx"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert conf.count("{") == conf.count("}")
