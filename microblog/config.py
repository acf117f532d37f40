"""Settings: read once from the environment, validated, then frozen.

This module is the only reader of ``os.environ``. Every setting names its variable, its default
and a help line; ``docs/configuration.md`` is checked against this table by a test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"must be at least 1, got {number}")
    return number


def _seconds(value: str) -> float:
    text = value.strip().lower()
    scale = 1.0
    if text.endswith("ms"):
        text, scale = text[:-2], 0.001
    elif text.endswith("s"):
        text = text[:-1]
    try:
        seconds = float(text) * scale
    except ValueError:
        raise ValueError(
            f"must be a duration in seconds such as 5 or 500ms, got {value!r}"
        ) from None
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


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
    db_pool_size: int = _setting(
        "DB_POOL_SIZE",
        _positive_int,
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
        "PORT", _positive_int, 3000, "Port of web when --port is not given."
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
        return settings

    def check_production(self) -> None:
        if not self.is_production:
            return
        if self.database_url is None:
            raise SettingsError("DATABASE_URL", "is required when MICROBLOG_ENV=production")
        if self.secret_key_base is None:
            raise SettingsError("SECRET_KEY_BASE", "is required when MICROBLOG_ENV=production")

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
