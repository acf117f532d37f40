"""Settings: read once from the environment, validated, then frozen.

This module is the only reader of ``os.environ``. Every setting names its variable, its default
and a help line; ``docs/configuration.md`` is checked against this table by a test.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from microblog.ratelimit.rules import DEFAULTS as DEFAULT_RATE_LIMITS
from microblog.ratelimit.rules import Rule, parse_rules

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
MIN_SECRET_LENGTH = 32
DEFAULT_DATA_DIR = Path("var")  # made absolute against the working directory at start-up


class SettingsError(ValueError):
    """A setting has a value we cannot run with; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _postgres_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a postgresql:// URL")
    try:
        parts.port  # noqa: B018 - evaluating it validates the port number
    except ValueError as error:
        raise ValueError(f"has a bad port ({error})") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("must name a host (postgresql://user:password@host:port/database)")
    return value


def _postgres_urls(value: str) -> tuple[str, ...]:
    """Comma-separated URLs. A multi-host URL (postgresql://host1,host2/db) stays one: a
    comma still inside a URL's host list does not start the next URL."""
    urls: list[str] = []
    for piece in (item.strip() for item in value.split(",")):
        if urls and "://" not in piece and not re.search(r"://[^/?]*[/?]", urls[-1]):
            urls[-1] += "," + piece
        elif piece:
            urls.append(piece)
    found = tuple(_postgres_url(url) for url in urls)
    if len(set(found)) < len(found):
        raise ValueError("names the same server twice")
    return found


# Parsers of setting values; the command line uses them too. Each raises ValueError saying
# what it wanted.


def whole_number(value: str, at_least: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"must be a whole number, got {value!r}") from None
    if number < at_least:
        raise ValueError(f"must be at least {at_least}, got {number}")
    return number


def positive_int(value: str) -> int:
    return whole_number(value, at_least=1)


def port_number(value: str) -> int:
    number = positive_int(value)
    if number > 65535:
        raise ValueError(f"must be a port number, 1 to 65535, got {number}")
    return number


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(value: str) -> float:
    """A duration: a number of seconds, or with a unit: 500ms, 5s, 10m, 2h, 7d."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*", value.lower())
    if not match:
        raise ValueError(f"must be a duration such as 5, 500ms, 10m or 7d, got {value!r}")
    return float(match[1]) * _UNITS[match[2] or "s"]


def queue_names(value: str) -> tuple[str, ...]:
    names = tuple(item.strip() for item in value.split(",") if item.strip())
    for name in names:
        if not re.fullmatch(r"[a-z0-9_-]{1,50}", name):
            raise ValueError(f"{name!r} is not a queue name (lower-case letters, digits, _ and -)")
    return names


def _switch(value: str) -> bool:
    text = value.strip().lower()
    if text not in ("on", "off"):
        raise ValueError(f"must be on or off, got {value!r}")
    return text == "on"


def _bytes(value: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*(b|kb|mb|gb)?\s*", value.lower())
    if not match:
        raise ValueError(f"must be a size such as 268435456, 512MB or 1GB, got {value!r}")
    number = int(match[1]) * {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}[match[2] or "b"]
    if number < 1:
        raise ValueError("must be at least 1 byte")
    return number


def _rate_limits(value: str) -> tuple[Rule, ...]:
    return tuple(parse_rules(value).values())


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = value.strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def _networks(value: str) -> tuple[IPNetwork, ...]:
    networks = []
    for item in value.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{item.strip()!r} is not an IP network such as 10.0.0.0/8"
                ) from None
    return tuple(networks)


def _secret(value: str) -> str:
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters long")
    return value


def _secrets(value: str) -> tuple[str, ...]:
    return tuple(_secret(item.strip()) for item in value.split(",") if item.strip())


def _directory(value: str) -> Path:
    return Path(value).expanduser().absolute()


def _text(value: str) -> str:
    return value.strip()


def _setting(env: str, parse: Callable[[str], Any], default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "help": help}, **kw)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = _setting(
        "DATABASE_URL",
        _postgres_url,
        None,
        "Primary PostgreSQL. Unset: an embedded server kept in MICROBLOG_DATA_DIR.",
        repr=False,
    )
    database_direct_url: str | None = _setting(
        "DATABASE_DIRECT_URL",
        _postgres_url,
        None,
        "The primary itself, when DATABASE_URL goes through PgBouncer in transaction mode: "
        "LISTEN and migrations connect here, and pooled connections keep no session state. "
        "Unset: DATABASE_URL.",
        repr=False,
    )
    replica_database_urls: tuple[str, ...] = _setting(
        "REPLICA_DATABASE_URL",
        _postgres_urls,
        (),
        "Streaming replicas of the primary, comma-separated. Unset: none, or with the embedded "
        "database the one `db --replica` runs.",
        repr=False,
    )
    replica_max_lag: float = _setting(
        "REPLICA_MAX_LAG",
        _seconds,
        5.0,
        "A replica further behind the primary than this is not read from until it catches up.",
    )
    queue_database_url: str | None = _setting(
        "QUEUE_DATABASE_URL",
        _postgres_url,
        None,
        "Where the job queue lives. Unset: the primary database, so a job commits with its data.",
        repr=False,
    )
    cache_database_url: str | None = _setting(
        "CACHE_DATABASE_URL",
        _postgres_url,
        None,
        "Where the cache and the rate-limit counters live. Unset: the primary database.",
        repr=False,
    )
    db_pool_size: int = _setting(
        "DB_POOL_SIZE",
        positive_int,
        10,
        "Connections per pool per process; the total is pools x processes.",
    )
    secret_key_base: str | None = _setting(
        "SECRET_KEY_BASE",
        _secret,
        None,
        "Key that signs session cookies, shared by every instance. Development: generated once "
        "into the data directory.",
        repr=False,
    )
    secret_key_fallbacks: tuple[str, ...] = _setting(
        "SECRET_KEY_FALLBACKS",
        _secrets,
        (),
        "Earlier keys, comma-separated, still accepted while sessions move to the new key.",
        repr=False,
    )
    env: str = _setting(
        "MICROBLOG_ENV",
        _one_of(ENVIRONMENTS),
        "development",
        "production requires DATABASE_URL and SECRET_KEY_BASE, sets Secure cookies and refuses "
        "an outdated schema.",
    )
    data_dir: Path = _setting(  # noqa: RUF009 - _setting returns dataclasses.field(...)
        "MICROBLOG_DATA_DIR",
        _directory,
        DEFAULT_DATA_DIR,
        "Folder of the embedded database and the development secret key.",
    )
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        "TRUSTED_PROXIES",
        _networks,
        _networks("127.0.0.1/32,::1/128"),
        "Peers whose X-Forwarded-For/Proto/Host headers are believed, comma-separated networks.",
    )
    instance_name: str | None = _setting(
        "INSTANCE_NAME",
        _text,
        None,
        "Name in logs, /up and the X-Instance header. Unset: host:port.",
    )
    log_format: str | None = _setting(
        "LOG_FORMAT",
        _one_of(LOG_FORMATS),
        None,
        "text or json. Unset: text in development, json in production.",
    )
    log_level: str = _setting(
        "LOG_LEVEL", _one_of(LOG_LEVELS), "info", "debug, info, warning or error."
    )
    port: int = _setting(
        "PORT", port_number, 3000, "Port of web and combined when --port is not given."
    )
    worker_queues: tuple[str, ...] = _setting(
        "WORKER_QUEUES",
        queue_names,
        (),
        "Queues a worker takes jobs from, comma-separated. Unset: all of them.",
    )
    worker_concurrency: int = _setting(
        "WORKER_CONCURRENCY",
        positive_int,
        10,
        "Jobs a worker runs at the same time.",
    )
    heartbeat_interval: float = _setting(
        "HEARTBEAT_INTERVAL",
        _seconds,
        5.0,
        "How often every process records that it is alive; dead ones are pruned this often too.",
    )
    heartbeat_timeout: float = _setting(
        "HEARTBEAT_TIMEOUT",
        _seconds,
        30.0,
        "A process silent this long is dead: its jobs go back to the queue.",
    )
    job_retention: float = _setting(
        "JOB_RETENTION",
        _seconds,
        7 * 86400.0,
        "Finished and discarded jobs are deleted after this long. Failed jobs are kept.",
    )
    cache_enabled: bool = _setting(
        "CACHE",
        _switch,
        True,
        "on or off. Off: every page is computed for every request (for comparison and debugging).",
    )
    cache_max_entries: int = _setting(
        "CACHE_MAX_ENTRIES",
        positive_int,
        100_000,
        "The cache is trimmed, oldest entries first, to at most this many entries.",
    )
    cache_max_bytes: int = _setting(
        "CACHE_MAX_BYTES",
        _bytes,
        256 * 1024 * 1024,
        "... and to at most this many bytes of keys and values (accepts 64MB, 1GB).",
    )
    rate_limits: tuple[Rule, ...] = _setting(
        "RATE_LIMITS",
        _rate_limits,
        tuple(DEFAULT_RATE_LIMITS.values()),
        "Per-rule overrides such as login_ip=20/1m,global_ip=600/5m; off disables every limit.",
    )
    shutdown_timeout: float = _setting(
        "SHUTDOWN_TIMEOUT",
        _seconds,
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
