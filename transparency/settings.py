"""Settings, validated once at the edge.

Every field reads the environment variable ``TRANSPARENCY_<NAME>``, except the database
URL, which reads ``DATABASE_URL``. ``get_settings()`` is called by the CLI; everything
below it takes the ``Settings`` object (or plain values) as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from transparency.domain.api_keys import parse_api_key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRANSPARENCY_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL; unset starts the embedded PostgreSQL under data_dir.",
    )
    data_dir: Path = Field(default=Path(".data"), description="Embedded database and locks.")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    admin_key: SecretStr | None = Field(
        default=None,
        description="Install this admin key at start (for automation); see `transparency new-key`.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies get 413."
    )
    pool_min_size: int = Field(default=2, ge=1, le=100, description="Pool connections kept open.")
    pool_max_size: int = Field(default=20, ge=1, le=500, description="Pool connections at most.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the JSON logs."
    )
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format.")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgres://", "postgresql://")
        ):
            raise ValueError("must be a postgres:// or postgresql:// URL")
        return value

    @field_validator("admin_key")
    @classmethod
    def _admin_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and parse_api_key(value.get_secret_value()) is None:
            raise ValueError("must be a key made by `transparency new-key` (tpk_<16>_<32>)")
        return value


class SettingsError(Exception):
    """A setting has a bad value; the message names the environment variable."""


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field in ("database_url", "DATABASE_URL"):
        return "DATABASE_URL"
    return f"TRANSPARENCY_{field.upper()}"


def get_settings() -> Settings:
    """Read and validate the environment, or raise SettingsError naming the variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(f"{_env_name(first['loc'])}: {first['msg']}") from None
    if settings.pool_min_size > settings.pool_max_size:
        raise SettingsError(
            "TRANSPARENCY_POOL_MIN_SIZE: must not exceed TRANSPARENCY_POOL_MAX_SIZE"
        )
    return settings
