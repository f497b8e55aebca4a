"""Settings are validated at start; a bad value stops start-up with one clear line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from transparency.domain.api_keys import new_api_key
from transparency.runtime.settings import SettingsError, get_settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRANSPARENCY_PORT", "eighty", "TRANSPARENCY_PORT: Input should be a valid integer"),
        ("TRANSPARENCY_PORT", "70000", "TRANSPARENCY_PORT: Input should be less than or equal"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL: Value error, must be a postgres"),
        ("TRANSPARENCY_LOG_LEVEL", "LOUD", "TRANSPARENCY_LOG_LEVEL: Input should be"),
        ("TRANSPARENCY_ADMIN_KEY", "letmein", "TRANSPARENCY_ADMIN_KEY: Value error"),
        ("TRANSPARENCY_MAX_BODY_BYTES", "10", "TRANSPARENCY_MAX_BODY_BYTES: Input should be"),
        ("TRANSPARENCY_WORKERS", "0", "TRANSPARENCY_WORKERS: Input should be greater than"),
        ("TRANSPARENCY_WORKERS", "65", "TRANSPARENCY_WORKERS: Input should be less than"),
        ("TRANSPARENCY_STATION_PORT", "8000", "TRANSPARENCY_STATION_PORT: Value error, must diff"),
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


@pytest.mark.parametrize(
    ("env", "public_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"TRANSPARENCY_PORT": "9001"}, "http://127.0.0.1:9001"),
        ({"TRANSPARENCY_HOST": "10.0.0.5", "TRANSPARENCY_PORT": "80"}, "http://10.0.0.5"),
        ({"TRANSPARENCY_HOST": "::1", "TRANSPARENCY_PORT": "9001"}, "http://[::1]:9001"),
        ({"TRANSPARENCY_HOST": "0.0.0.0"}, f"http://{socket.gethostname()}:8000"),  # noqa: S104
        ({"TRANSPARENCY_HOST": "::", "TRANSPARENCY_PORT": "81"}, f"http://{socket.gethostname()}:81"),
        ({"TRANSPARENCY_PORT": "9001", "TRANSPARENCY_PUBLIC_URL": "https://t.example/"},
         "https://t.example"),
    ],
)  # fmt: skip
def test_the_public_url_follows_where_the_api_listens_unless_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], public_url: str
) -> None:
    for name in ("TRANSPARENCY_HOST", "TRANSPARENCY_PORT", "TRANSPARENCY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert get_settings().public_url == public_url


def serve(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`transparency serve` run to its end with ``env``, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "transparency", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_refuses_to_start_with_one_line(tmp_path: object) -> None:
    secret = "not-a-key-but-secret-value"
    env = {
        **os.environ,
        "TRANSPARENCY_PORT": "eighty",
        "TRANSPARENCY_ADMIN_KEY": secret,
        "TRANSPARENCY_DATA_DIR": str(tmp_path),
    }
    done = serve(env, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("transparency: invalid setting TRANSPARENCY_")
    assert secret not in done.stderr
    assert done.stdout == ""


def test_serve_with_workers_refuses_an_unreadable_master_key_once(tmp_path: Path) -> None:
    """Checked before the database and any API process start: one line, not one failure
    per process."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "TRANSPARENCY_WORKERS": "2",
        "TRANSPARENCY_DATA_DIR": str(tmp_path / "data"),
        "TRANSPARENCY_MASTER_KEY_FILE": str(tmp_path / "missing.key"),
    }
    done = serve(env, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("{")]
    assert lines == [
        "transparency: invalid setting TRANSPARENCY_MASTER_KEY_FILE: cannot read:"
        " No such file or directory"
    ]
    assert "Started server process" not in done.stderr
    # Refused before a database is started for nothing (and so whether or not PostgreSQL's
    # own user could reach this directory: pytest keeps its root private).
    assert not (tmp_path / "data" / "pg").exists()
