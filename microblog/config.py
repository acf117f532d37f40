"""Settings: read once from the environment, validated, then frozen.

This module is the only reader of ``os.environ``. Every setting names its variable, its default
and a help line; ``docs/configuration.md`` is checked against this table by a test.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from microblog import parsers
from microblog.parsers import IPNetwork
from microblog.ratelimit.rules import DEFAULTS as DEFAULT_RATE_LIMITS
from microblog.ratelimit.rules import Rule

ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_DATA_DIR = Path("var")  # made absolute against the working directory at start-up


class SettingsError(ValueError):
    """A setting has a value we cannot run with; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _setting(env: str, parse: Callable[[str], Any], default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "help": help}, **kw)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = _setting(
        "DATABASE_URL",
        parsers.postgres_url,
        None,
        "Primary PostgreSQL. Unset: an embedded server kept in MICROBLOG_DATA_DIR.",
        repr=False,
    )
    database_direct_url: str | None = _setting(
        "DATABASE_DIRECT_URL",
        parsers.postgres_url,
        None,
        "The primary itself, when DATABASE_URL goes through PgBouncer in transaction mode: "
        "LISTEN and migrations connect here, and pooled connections keep no session state. "
        "Unset: DATABASE_URL.",
        repr=False,
    )
    pooler_prepared_statements: bool = _setting(
        "POOLER_PREPARED_STATEMENTS",
        parsers.switch,
        False,
        "on or off. On: the PgBouncer that DATABASE_URL names is 1.21 or later with "
        "max_prepared_statements set, so pooled connections keep their statement cache.",
    )
    replica_database_urls: tuple[str, ...] = _setting(
        "REPLICA_DATABASE_URL",
        parsers.postgres_urls,
        (),
        "Streaming replicas of the primary, comma-separated. Unset: none, or with the embedded "
        "database the one `db --replica` runs.",
        repr=False,
    )
    replica_max_lag: float = _setting(
        "REPLICA_MAX_LAG",
        parsers.seconds,
        5.0,
        "A replica further behind the primary than this is not read from until it catches up.",
    )
    queue_database_url: str | None = _setting(
        "QUEUE_DATABASE_URL",
        parsers.postgres_url,
        None,
        "Where the job queue lives. Unset: the primary database, so a job commits with its data.",
        repr=False,
    )
    cache_database_url: str | None = _setting(
        "CACHE_DATABASE_URL",
        parsers.postgres_url,
        None,
        "Where the cache and the rate-limit counters live. Unset: the primary database.",
        repr=False,
    )
    db_pool_size: int = _setting(
        "DB_POOL_SIZE",
        parsers.positive_int,
        10,
        "Connections per pool per process; the total is pools x processes.",
    )
    secret_key_base: str | None = _setting(
        "SECRET_KEY_BASE",
        parsers.secret,
        None,
        "Key that signs session cookies, shared by every instance. Development: generated once "
        "into the data directory.",
        repr=False,
    )
    secret_key_fallbacks: tuple[str, ...] = _setting(
        "SECRET_KEY_FALLBACKS",
        parsers.secret_list,
        (),
        "Earlier keys, comma-separated, still accepted while sessions move to the new key.",
        repr=False,
    )
    env: str = _setting(
        "MICROBLOG_ENV",
        parsers.one_of(ENVIRONMENTS),
        "development",
        "production requires DATABASE_URL and SECRET_KEY_BASE, sets Secure cookies and refuses "
        "an outdated schema.",
    )
    data_dir: Path = _setting(  # noqa: RUF009 - _setting returns dataclasses.field(...)
        "MICROBLOG_DATA_DIR",
        parsers.directory,
        DEFAULT_DATA_DIR,
        "Folder of the embedded database and the development secret key.",
    )
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        "TRUSTED_PROXIES",
        parsers.networks,
        parsers.networks("127.0.0.1/32,::1/128"),
        "Peers whose X-Forwarded-For/Proto/Host headers are believed, comma-separated networks.",
    )
    public_origin: str | None = _setting(
        "PUBLIC_ORIGIN",
        parsers.origin,
        None,
        "The site's address as readers reach it, such as https://microblog.example: the "
        "absolute links of Atom feeds. Unset: the address each request came to.",
    )
    metrics_token: str | None = _setting(
        "METRICS_TOKEN",
        parsers.secret,
        None,
        "Bearer token that opens /metrics to scrapers outside TRUSTED_PROXIES and loopback "
        "(at least 32 characters). Unset: only those may scrape.",
        repr=False,
    )
    instance_name: str | None = _setting(
        "INSTANCE_NAME",
        parsers.plain_text,
        None,
        "Name in logs, /up and the X-Instance header. Unset: host:port.",
    )
    log_format: str | None = _setting(
        "LOG_FORMAT",
        parsers.one_of(LOG_FORMATS),
        None,
        "text or json. Unset: text in development, json in production.",
    )
    log_level: str = _setting(
        "LOG_LEVEL", parsers.one_of(LOG_LEVELS), "info", "debug, info, warning or error."
    )
    port: int = _setting(
        "PORT", parsers.port_number, 3000, "Port of web and combined when --port is not given."
    )
    worker_queues: tuple[str, ...] = _setting(
        "WORKER_QUEUES",
        parsers.queue_names,
        (),
        "Queues a worker takes jobs from, comma-separated. Unset: all of them.",
    )
    worker_concurrency: int = _setting(
        "WORKER_CONCURRENCY",
        parsers.positive_int,
        10,
        "Jobs a worker runs at the same time.",
    )
    heartbeat_interval: float = _setting(
        "HEARTBEAT_INTERVAL",
        parsers.seconds,
        5.0,
        "How often every process records that it is alive; dead ones are pruned this often too.",
    )
    heartbeat_timeout: float = _setting(
        "HEARTBEAT_TIMEOUT",
        parsers.seconds,
        30.0,
        "A process silent this long is dead: its jobs go back to the queue.",
    )
    job_retention: float = _setting(
        "JOB_RETENTION",
        parsers.seconds,
        7 * 86400.0,
        "Finished and discarded jobs are deleted after this long. Failed jobs are kept.",
    )
    cache_enabled: bool = _setting(
        "CACHE",
        parsers.switch,
        True,
        "on or off. Off: every page is computed for every request (for comparison and debugging).",
    )
    cache_max_entries: int = _setting(
        "CACHE_MAX_ENTRIES",
        parsers.positive_int,
        100_000,
        "The cache is trimmed, oldest entries first, to at most this many entries.",
    )
    cache_max_bytes: int = _setting(
        "CACHE_MAX_BYTES",
        parsers.byte_size,
        256 * 1024 * 1024,
        "... and to at most this many bytes of keys and values (accepts 64MB, 1GB).",
    )
    event_retention: float = _setting(
        "EVENT_RETENTION",
        parsers.seconds,
        3600.0,
        "Live-update events are kept this long: a stream that reconnects after a longer gap "
        "is told to reload its page.",
    )
    rate_limits: tuple[Rule, ...] = _setting(
        "RATE_LIMITS",
        parsers.rate_limit_rules,
        tuple(DEFAULT_RATE_LIMITS.values()),
        "Per-rule overrides such as login_ip=20/1m,global_ip=600/5m; off disables every limit.",
    )
    shutdown_timeout: float = _setting(
        "SHUTDOWN_TIMEOUT",
        parsers.seconds,
        20.0,
        "On SIGTERM, how long in-flight requests and jobs get to finish before the process exits.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting; raise SettingsError naming the first bad variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in fields(cls):
            variable = setting.metadata["env"]
            raw = environ.get(variable, "")
            if raw.strip() == "":
                continue
            try:
                values[setting.name] = setting.metadata["parse"](raw)
            except ValueError as error:
                raise SettingsError(variable, str(error)) from None
        values.setdefault("data_dir", DEFAULT_DATA_DIR.absolute())
        settings = cls(**values)
        settings.check_production()
        settings.check_consistency()
        return settings

    def check_production(self) -> None:
        if not self.is_production:
            return
        if self.database_url is None:
            raise SettingsError("DATABASE_URL", "is required when MICROBLOG_ENV=production")
        if self.secret_key_base is None:
            raise SettingsError("SECRET_KEY_BASE", "is required when MICROBLOG_ENV=production")

    def check_consistency(self) -> None:
        if self.database_direct_url and not self.database_url:
            raise SettingsError(
                "DATABASE_DIRECT_URL", "is set without DATABASE_URL, whose server it must name"
            )
        if self.pooler_prepared_statements and self.database_direct_url in (
            None,
            self.database_url,
        ):
            raise SettingsError(
                "POOLER_PREPARED_STATEMENTS",
                "is on, but DATABASE_DIRECT_URL does not name the server behind a pooler",
            )
        primary = {self.database_url, self.database_direct_url} - {None}
        if primary & set(self.replica_database_urls):
            raise SettingsError("REPLICA_DATABASE_URL", "names the primary (DATABASE_URL)")
        if self.heartbeat_timeout <= 2 * self.heartbeat_interval:
            raise SettingsError("HEARTBEAT_TIMEOUT", "must be more than twice HEARTBEAT_INTERVAL")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def name_instance(self, role: str, port: int | None = None) -> str:
        """INSTANCE_NAME, else host:port for servers and host:role for the rest."""
        if self.instance_name:
            return self.instance_name
        return f"{socket.gethostname()}:{port if port else role}"

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.is_production else "text")


def documented_variables() -> list[tuple[str, str]]:
    """(variable, help) for every setting, in declaration order."""
    return [(f.metadata["env"], f.metadata["help"]) for f in fields(Settings)]
