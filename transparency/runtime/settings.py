"""Settings, validated once at the edge.

Every field reads the environment variable ``TRANSPARENCY_<NAME>``, except the database
URL, which reads ``DATABASE_URL``. ``get_settings()`` is called by the CLI; everything
below it takes the ``Settings`` object (or plain values) as arguments.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from transparency.domain.api_keys import parse_api_key
from transparency.domain.signing_keys import KEYS_PER_DAY
from transparency.runtime.envelope import MasterKey, MasterKeyError
from transparency.runtime.workers import parse_cpus


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
    station_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="A port for warehouse stations, served by API processes of their own "
        "(as many as `workers`); the processes on `port` (customers, brands) then run only on "
        "CPU the stations leave. Expose it to warehouses only. Unset: one port for all.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="API processes sharing the port. Unset: one per core with the embedded "
        "database (PostgreSQL shares these cores), one with DATABASE_URL.",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="Install this admin key at start (for automation); see `transparency new-key`.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes; encrypts signing keys at rest. "
        "See `transparency new-master-key`.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master key instead. Unset with the embedded database: "
        "<data_dir>/master.key, made on first start.",
    )
    public_url: str = Field(
        default="",
        validate_default=True,
        description="Base URL printed in labels' QR codes and Digital Link URIs. Unset: "
        "http://<host>:<port> where the API listens (a wildcard host: this machine's name).",
    )
    max_jobs_per_brand: int = Field(
        default=2, ge=1, le=100, description="Code batches a brand may have queued or running."
    )
    max_signing_keys_per_day: int = Field(
        default=KEYS_PER_DAY,
        ge=1,
        le=1000,
        description="Signing keys a brand may make in any 24 hours (rotations, and the key "
        "that replaces a revoked active one); past it, 429 /problems/key-rotation-limit.",
    )
    job_chunk_size: int = Field(
        default=50_000, ge=100, le=1_000_000, description="Codes written per transaction."
    )
    job_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        description="A job whose process stops renewing this lease is resumed by another.",
    )
    run_jobs: bool = Field(
        default=True,
        description="Whether this process runs batch jobs (issuance, imports). `serve` with "
        "several API processes runs them in a process of its own, at lower CPU priority, and "
        "sets this false in the API processes; `python -m transparency jobs` is that process "
        "alone, for a machine that serves no HTTP.",
    )
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=300,
        description="The longest an API process trusts what it holds of API keys and signing"
        " keys without the database confirming it: a revocation holds in every process"
        " within this bound, even when a notification is lost.",
    )
    reversal_window_days: int = Field(
        default=10,
        ge=0,
        le=365,
        description="How long after a pass its site may reverse it, take it back as a return"
        " and restock it.",
    )
    customer_rate_per_minute: int = Field(
        default=60, ge=1, description="Customer checks per client address per minute."
    )
    customer_burst: int = Field(default=20, ge=1, description="Customer checks allowed at once.")
    # An admitted check records a scan: about 0.6 ms of CPU, API and PostgreSQL together,
    # so 100 a second take 6% of a core per process. At 200, bench_faults.py's flood raised
    # the stations' claim p99 2.1-2.5x; at 100, 1.8-2.0x (two runs each, same session).
    customer_checks_per_second: int = Field(
        default=100,
        ge=0,
        description="Customer checks (verify, the scan page, photos) one API process answers "
        "a second, from all clients together; past it 503 /problems/customer-checks-busy, so "
        "that a flood from many addresses leaves the warehouses their share. 0: no limit.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDRs of the proxies in front of the API; "
        "only they may name the client address (X-Forwarded-For). Empty: none.",
    )
    clone_max_scans: int = Field(
        default=20, ge=1, description="Customer scans of one code before it turns suspicious."
    )
    clone_max_regions: int = Field(
        default=3, ge=1, description="Distinct regions scanning one code before it is suspicious."
    )
    clone_max_scans_after_shipping: int = Field(
        default=5,
        ge=1,
        description="Customer scans of one code after it shipped before it turns suspicious.",
    )
    scan_max_bytes: int = Field(
        default=15_000_000, ge=1024, description="Larger photos sent to /v1/scans get 413."
    )
    scan_max_pixels: int = Field(
        default=40_000_000, ge=10_000, description="Photos with more pixels get 413."
    )
    scan_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="A photo that takes longer to decode gets 422."
    )
    scan_workers: int = Field(default=2, ge=1, le=64, description="Photo decoding processes.")
    bulk_cpus: str = Field(
        default="auto",
        description="CPUs that bulk work (jobs, photo decoding, label rendering) may run on:"
        " a list such as 1-3,5, or all. auto: every CPU but one, which claims keep to"
        " themselves.",
    )
    label_renders: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Label downloads rendered at once per API process (a process each);"
        " one more waits 5 s, then gets 503 /problems/renderers-busy.",
    )
    scan_queue: int = Field(
        default=4,
        ge=0,
        le=1024,
        description="Photos that may wait for a busy decoder, per API process; one more gets 503.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies get 413."
    )
    max_import_bytes: int = Field(
        default=268_435_456, ge=1024, description="Larger serial-import files get 413."
    )
    max_import_rows: int = Field(
        default=1_000_000,
        ge=1,
        le=10_000_000,
        description="Rows of one serial import, counted as it is read; past it the import fails.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="A request whose line and headers take longer to arrive gets 408, and its"
        " connection is closed (a new connection has this long to send its first request).",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A request body gets this long, plus a second for every 10 kB received, to"
        " arrive; slower gets 408 and its connection closed.",
    )
    max_connections: int = Field(
        default=900,
        ge=1,
        le=100_000,
        description="Open connections per API process; one more gets 503 and is closed.",
    )
    pool_min_size: int = Field(default=2, ge=1, le=100, description="Pool connections kept open.")
    pool_max_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="Pool connections at most, per API process. Unset with the embedded"
        " PostgreSQL: 4 per core, shared by the API processes (at least 4 each).",
    )
    pool_acquire_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="A request that waits longer for a pool connection gets 503"
        " /problems/database-busy.",
    )
    statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A request's SQL statement running longer is cancelled: 503"
        " /problems/statement-timeout. Jobs' bulk statements are exempt.",
    )
    idle_in_transaction_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A transaction idle longer is ended by PostgreSQL (its connection too).",
    )
    console_session_hours: float = Field(
        default=8.0,
        gt=0,
        le=720,
        description="A brand console session ends this long after sign-in (a working day by"
        " default); signing out or revoking its key ends it before.",
    )
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

    @field_validator("master_key")
    @classmethod
    def _master_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                MasterKey.from_text(value.get_secret_value())
            except MasterKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("bulk_cpus")
    @classmethod
    def _cpus(cls, value: str) -> str:
        if hasattr(os, "sched_getaffinity"):
            parse_cpus(value, os.sched_getaffinity(0))  # ValueError names what is wrong
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or a CIDR") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if not value:  # host and port are fields above, so validated before this one
            return listening_url(info.data.get("host", "127.0.0.1"), info.data.get("port", 8000))
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("station_port")
    @classmethod
    def _other_port(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value == info.data.get("port"):
            raise ValueError("must differ from TRANSPARENCY_PORT")
        return value

    @field_validator("admin_key")
    @classmethod
    def _admin_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and parse_api_key(value.get_secret_value()) is None:
            raise ValueError("must be a key made by `transparency new-key` (tpk_<16>_<32>)")
        return value


def listening_url(host: str, port: int) -> str:
    """The base URL of an API listening on host:port, as another machine would write it.

    A label printed with ``http://127.0.0.1:8000`` while the service listened elsewhere
    opened nothing; a wildcard address (0.0.0.0, ::) is no place to connect to, so it
    becomes this machine's name.
    """
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (recognises the wildcard, binds nothing)
        host = socket.gethostname()
    if ":" in host:  # an IPv6 literal (RFC 3986: in brackets)
        host = f"[{host}]"
    return f"http://{host}" if port == 80 else f"http://{host}:{port}"


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
    if settings.database_url is not None and not (settings.master_key or settings.master_key_file):
        raise SettingsError(
            "TRANSPARENCY_MASTER_KEY: required (or TRANSPARENCY_MASTER_KEY_FILE) when"
            " DATABASE_URL is set"
        )
    if settings.pool_min_size > settings.pool_max_size:
        raise SettingsError(
            "TRANSPARENCY_POOL_MIN_SIZE: must not exceed TRANSPARENCY_POOL_MAX_SIZE"
        )
    return settings


def load_master_key(settings: Settings) -> MasterKey:
    """The master key from the setting or its file; raises SettingsError naming the variable."""
    try:
        if settings.master_key is not None:
            return MasterKey.from_text(settings.master_key.get_secret_value())
        if settings.master_key_file is not None:
            return MasterKey.from_text(settings.master_key_file.read_text())
    except OSError as exc:
        raise SettingsError(f"TRANSPARENCY_MASTER_KEY_FILE: cannot read: {exc.strerror}") from None
    except MasterKeyError as exc:
        raise SettingsError(f"TRANSPARENCY_MASTER_KEY: {exc}") from None
    raise SettingsError("TRANSPARENCY_MASTER_KEY: not set")
