"""All of crewgate's settings, read once from ``CREWGATE_*`` environment variables.

This is the only module that reads the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PROJECT_ROOT", "Settings", "get_settings", "process_env"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CREWGATE_", extra="ignore")

    config_dir: Path = Field(default=PROJECT_ROOT / "configs", description="YAML agents, crews, models")
    allowed_roots: str = Field(
        default=str(PROJECT_ROOT / "examples"),
        description="directories tools may read, separated by os.pathsep",
    )
    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'crewgate.db'}",
        description="SQLAlchemy async URL",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_concurrency: int = Field(default=4, ge=1, le=256, description="tasks run at once")
    run_tasks: bool = Field(
        default=True,
        description="embedded dispatcher: run queued tasks in this process; false: only accept and stream "
        "(other processes on the same database run them)",
    )
    dispatcher: Literal["embedded", "celery"] = Field(
        default="embedded",
        description="embedded: crews run on a thread pool in the gateway; celery: on `crewgate worker` "
        "processes, through CREWGATE_BROKER_URL (the gateway then runs none)",
    )
    broker_url: str = Field(default="", description="Celery broker (redis://… or amqp://…); empty: CREWGATE_REDIS_URL")
    redis_url: str = Field(
        default="",
        description="Redis for wake-ups across processes (pub/sub); empty: wake-ups stay in this process "
        "and other processes' writes are found by the poll",
    )
    redis_prefix: str = Field(
        default="crewgate",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="prefix of every Redis key and channel, and of the Celery queue",
    )
    wakeups: Literal["auto", "local", "redis", "postgres"] = Field(
        default="auto",
        description="how processes wake each other: auto: redis when CREWGATE_REDIS_URL is set, else local; "
        "postgres: LISTEN/NOTIFY on the PostgreSQL database (no Redis needed; two more connections a process)",
    )
    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="a runner renews its lease on each task it runs every lease_s / 3; a task whose lease "
        "ran out is presumed abandoned and run again (or failed) by recovery",
    )
    redispatch_s: float = Field(
        default=60.0,
        gt=0,
        description="celery: a task still queued this long after it was sent (or never sent: the broker was "
        "down) is sent again; a broker that lost its messages (a Redis restart without persistence) loses none",
    )
    worker_concurrency: int = Field(default=2, ge=1, le=256, description="crews run at once by `crewgate worker`")
    task_timeout_s: float = Field(default=900.0, gt=0, description="time limit per task")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    api_keys: str = Field(
        default="",
        description="comma-separated bearer tokens with full access (scope admin); with none here and no key "
        "ever created by `crewgate keys create`, the API is open",
    )
    jwt_secret: str = Field(
        default="",
        description="HS256 secret for POST /v1/auth/token's JWTs, the same on every replica; empty: that "
        "endpoint refuses (400 tokens_disabled) and JWTs are not accepted",
    )
    jwt_ttl_s: int = Field(default=900, ge=1, le=86_400, description="lifetime of a JWT from POST /v1/auth/token")
    auth_cache_s: float = Field(
        default=5.0, ge=0, le=5, description="how long a key's record (revoked or not) is trusted before re-reading"
    )
    rate_limit_submit: str = Field(
        default="60/minute",
        description="per caller: POST /v1/tasks, retries and input answers (limits syntax, e.g. 60/minute or "
        "5/second;60/minute); empty: no limit",
    )
    rate_limit_read: str = Field(
        default="600/minute", description="per caller: every other /v1 request and WebSocket open; empty: no limit"
    )
    rate_limit_strategy: Literal["moving-window", "sliding-window-counter"] = Field(
        default="moving-window", description="how requests are counted (the limits library's strategies)"
    )
    max_sockets_per_key: int = Field(
        default=50, ge=0, description="open WebSockets per caller, across replicas when Redis is set; 0: no cap"
    )
    max_request_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body")
    max_request_head_bytes: int = Field(
        default=65_536, ge=8192, description="largest request line plus headers (a WebSocket handshake too)"
    )
    request_head_timeout_s: float = Field(
        default=10.0, gt=0, description="a connection whose request head has not fully arrived by then is closed"
    )
    reload: bool = Field(default=True, description="watch config_dir and reload valid edits")
    config_max_file_bytes: int = Field(default=1_048_576, ge=1024, description="largest config file")
    config_max_total_bytes: int = Field(default=8_388_608, ge=1024, description="largest config, all files")
    config_max_depth: int = Field(default=64, ge=4, le=1000, description="deepest YAML nesting")
    config_max_aliases: int = Field(default=1_000, ge=0, description="YAML aliases (*name) per file")
    config_max_nodes: int = Field(
        default=200_000, ge=100, description="YAML nodes per file, each alias counted as the nodes it stands for"
    )
    config_validate_timeout_s: float = Field(
        default=30.0, gt=0, description="time budget of one POST /v1/configs/validate (run in a worker process)"
    )
    ws_buffer: int = Field(default=256, ge=1, description="frames queued per watcher")
    ws_stall_timeout_s: float = Field(
        default=5.0, gt=0, description="a watcher whose buffer stays full this long is closed with 1013"
    )
    ws_ping_interval_s: float = Field(default=20.0, gt=0, description="server pings on idle sockets")
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="how often watchers and runners look for work written elsewhere"
    )
    store_write_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="how long a running task retries writing its events while the store cannot take them; "
        "then it stops and ends failed (code store_unavailable) once the store takes writes again",
    )

    metrics: bool = Field(
        default=True, description="Prometheus metrics (GET /metrics); false: nothing is recorded, /metrics is 404"
    )
    prometheus_multiproc_dir: str = Field(
        default="",
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR"),
        description="prometheus-client's multiprocess mode (read by the library itself): every process writes "
        "its metrics there and GET /metrics sums them",
    )
    otel_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT): runs are traced and sent to <it>/v1/traces; "
        "empty: no tracing, no network",
    )
    webhook_allowed_hosts: str = Field(
        default="",
        max_length=10_000,
        description="hosts webhooks may be sent to, comma-separated: exact names or *.suffix; empty: "
        "webhooks are refused",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="let webhooks reach private, loopback, link-local and multicast addresses (tests, labs)",
    )
    webhook_deliver: bool = Field(default=True, description="run a webhook deliverer in this process")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, description="time limit of one delivery")
    webhook_max_attempts: int = Field(default=8, ge=1, le=100, description="attempts per event before giving up")
    webhook_max_age_s: float = Field(
        default=3600.0, gt=0, description="an event still failing this long after its first attempt is given up"
    )
    webhook_retry_base_s: float = Field(default=1.0, gt=0, description="first retry delay; doubles each attempt")
    webhook_retry_max_s: float = Field(default=300.0, gt=0, description="longest retry delay")
    webhook_concurrency: int = Field(default=16, ge=1, le=1024, description="tasks whose hooks are sent at once")
    webhook_poll_s: float = Field(default=1.0, gt=0, description="how often the deliverer looks for pending events")
    webhook_lease_s: float = Field(
        default=60.0, gt=0, description="a deliverer's claim on a task's webhook; another takes over after it"
    )

    @field_validator("allowed_roots")
    @classmethod
    def _roots_exist(cls, value: str) -> str:
        parts = [p for p in value.split(os.pathsep) if p.strip()]
        if not parts:
            raise ValueError("at least one allowed root is required")
        missing = [p for p in parts if not Path(p).expanduser().is_dir()]
        if missing:
            raise ValueError(f"allowed roots that are not directories: {', '.join(missing)}")
        return value

    @field_validator("rate_limit_submit", "rate_limit_read")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse_many

        if value.strip():
            parse_many(value)  # ValueError: "couldn't parse rate limit string ..."
        return value

    @property
    def broker(self) -> str:
        """The Celery broker URL: ``broker_url``, else ``redis_url``."""
        return self.broker_url or self.redis_url

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.api_keys.split(",") if t.strip())

    @property
    def webhook_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower().rstrip(".") for h in self.webhook_allowed_hosts.split(",") if h.strip())

    @property
    def roots(self) -> list[Path]:
        return [Path(p).expanduser().resolve() for p in self.allowed_roots.split(os.pathsep) if p.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def process_env() -> Mapping[str, str]:
    """The environment, for model profiles that name their key by variable (``api_key_env``)."""
    return dict(os.environ)
