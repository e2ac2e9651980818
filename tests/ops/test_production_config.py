"""Production refuses insecure or missing secrets at start, naming the setting; `trendscope
check-config` lists every problem without starting anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import DEV_SECRET_KEY, Settings
from tests.conftest import SECURE_PRODUCTION, production_settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_complete_production_configuration_starts() -> None:
    assert production_settings().is_production


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"secret_key": DEV_SECRET_KEY}, "SECRET_KEY is the published development default"),
        ({"secret_key": "x" * 31}, "at least 32"),
        ({"credential_keys": None}, "CREDENTIAL_KEYS is not set"),
        ({"credential_keys": " , "}, "CREDENTIAL_KEYS is not set"),
        ({"public_url": None}, "PUBLIC_URL is not set"),
        ({"public_url": "http://api.example.com"}, "PUBLIC_URL must be an https:// URL"),
        ({"database_url": None}, "DATABASE_URL is not set"),
        ({"stripe_api_key": "sk_live_x"}, "STRIPE_WEBHOOK_SECRET is not set"),
        ({"app_url": "http://localhost:3000"}, "APP_URL is the development default"),
        (
            {"stripe_api_key": "sk_live_x", "stripe_webhook_secret": "whsec_x"},
            "BILLING_SUCCESS_URL points at localhost",
        ),
    ],
)
def test_each_insecure_setting_is_refused_by_name(change: dict[str, object], named: str) -> None:
    if named is None:
        production_settings(**change)
        return
    with pytest.raises(ValueError, match=named):
        production_settings(**change)


def test_the_development_default_is_fine_outside_production() -> None:
    assert Settings.model_fields["secret_key"].default == DEV_SECRET_KEY
    assert Settings(env="development", secret_key=DEV_SECRET_KEY).secret_key == DEV_SECRET_KEY


def _env(**settings: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {s.upper() for s in SECURE_PRODUCTION}}
    env.pop("SECRET_KEY", None)
    for name, value in settings.items():
        if value is not None:
            env[name.upper()] = value
    return env


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_check_config_lists_every_problem_then_passes_when_fixed() -> None:
    bare = _run("check-config", env=_env(env="production"))
    assert bare.returncode == 1
    for name in ("SECRET_KEY", "CREDENTIAL_KEYS", "PUBLIC_URL", "DATABASE_URL", "APP_URL"):
        assert name in bare.stderr, bare.stderr
    good = _run("check-config", env=_env(**{k: str(v) for k, v in SECURE_PRODUCTION.items()}))
    assert good.returncode == 0, good.stderr
    assert "ok" in good.stdout


@pytest.mark.slow
def test_the_api_refuses_to_start_in_production_on_the_development_secret() -> None:
    secure = {k: str(v) for k, v in SECURE_PRODUCTION.items()}
    result = _run("api", "--port", "1", env=_env(**{**secure, "secret_key": DEV_SECRET_KEY}))
    assert result.returncode != 0
    assert "SECRET_KEY is the published development default" in result.stderr
    assert "Traceback" not in result.stderr
