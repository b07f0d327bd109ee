"""The production switch fails fast without secrets and passes check --deploy when configured."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SECRET_KEY",
                                                             "DJANGO_ALLOWED_HOSTS", "DJANGO_DEBUG", "STRATUM_DEMO"}}
    base.update(DJANGO_SETTINGS_MODULE="crm.settings.base", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=120)


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", STRATUM_PRODUCTION="1", ALLOWED_HOSTS="crm.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is missing" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _manage("check", STRATUM_PRODUCTION="1", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is missing" in result.stderr


def test_production_passes_check_deploy_without_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", STRATUM_PRODUCTION="1",
                     SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="crm.example.com")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout
