"""Settings are validated at start; a bad value stops start-up with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from transparency.domain.api_keys import new_api_key
from transparency.settings import SettingsError, get_settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRANSPARENCY_PORT", "eighty", "TRANSPARENCY_PORT: Input should be a valid integer"),
        ("TRANSPARENCY_PORT", "70000", "TRANSPARENCY_PORT: Input should be less than or equal"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL: Value error, must be a postgres"),
        ("TRANSPARENCY_LOG_LEVEL", "LOUD", "TRANSPARENCY_LOG_LEVEL: Input should be"),
        ("TRANSPARENCY_ADMIN_KEY", "letmein", "TRANSPARENCY_ADMIN_KEY: Value error"),
        ("TRANSPARENCY_MAX_BODY_BYTES", "10", "TRANSPARENCY_MAX_BODY_BYTES: Input should be"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert str(info.value).startswith(message)


def test_pool_bounds_must_be_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSPARENCY_POOL_MIN_SIZE", "30")
    monkeypatch.setenv("TRANSPARENCY_POOL_MAX_SIZE", "10")
    with pytest.raises(SettingsError, match="TRANSPARENCY_POOL_MIN_SIZE"):
        get_settings()


def test_defaults_and_a_valid_admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = str(new_api_key())
    monkeypatch.setenv("TRANSPARENCY_ADMIN_KEY", key)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = get_settings()
    assert settings.port == 8000
    assert settings.database_url is None
    assert settings.admin_key is not None
    assert key not in repr(settings)


def test_serve_refuses_to_start_with_one_line(tmp_path: object) -> None:
    secret = "not-a-key-but-secret-value"
    env = {
        **os.environ,
        "TRANSPARENCY_PORT": "eighty",
        "TRANSPARENCY_ADMIN_KEY": secret,
        "TRANSPARENCY_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "transparency", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("transparency: invalid setting TRANSPARENCY_")
    assert secret not in done.stderr
    assert done.stdout == ""
