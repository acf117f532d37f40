"""Settings: defaults, validation that names the variable, production rules, documentation."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path

import pytest

from microblog.cli import build_parser
from microblog.config import Settings, SettingsError, documented_variables
from microblog.db.pools import DatabaseUrls

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "s" * 40


def test_defaults_without_any_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.db_pool_size == 10
    assert settings.env == "development"
    assert settings.data_dir == tmp_path / "var"
    assert settings.port == 3000
    assert settings.effective_log_format == "text"
    assert ipaddress.ip_address("127.0.0.1") in settings.trusted_proxies[0]


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DATABASE_URL", "not-a-url", "postgresql://"),
        ("DATABASE_URL", "mysql://db/app", "postgresql://"),
        ("DATABASE_URL", "postgresql://host:notaport/db", "port"),
        ("DATABASE_URL", "postgresql:///db", "host"),
        ("DB_POOL_SIZE", "abc", "whole number"),
        ("DB_POOL_SIZE", "0", "at least 1"),
        ("MICROBLOG_ENV", "staging", "development, production"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,banana", "banana"),
        ("SHUTDOWN_TIMEOUT", "soon", "duration"),
        ("SHUTDOWN_TIMEOUT", "-1", "duration"),
        ("JOB_RETENTION", "7 weeks", "duration"),
        ("WORKER_QUEUES", "default,Bad Queue", "queue name"),
        ("WORKER_CONCURRENCY", "0", "at least 1"),
        ("HEARTBEAT_TIMEOUT", "1s", "twice HEARTBEAT_INTERVAL"),
        ("QUEUE_DATABASE_URL", "redis://queue", "postgresql://"),
        ("SECRET_KEY_BASE", "short", "32 characters"),
        ("LOG_LEVEL", "loud", "debug"),
        ("PORT", "http", "whole number"),
        ("PORT", "70000", "1 to 65535"),
        ("REPLICA_DATABASE_URL", "postgresql://r1/app,redis://r2", "postgresql://"),
        ("REPLICA_DATABASE_URL", "postgresql://r1/app, postgresql://r1/app", "twice"),
        ("REPLICA_MAX_LAG", "a while", "duration"),
        ("DATABASE_DIRECT_URL", "pgbouncer:6432", "postgresql://"),
        ("DATABASE_DIRECT_URL", "postgresql://db:5432/app", "without DATABASE_URL"),
        ("POOLER_PREPARED_STATEMENTS", "yes please", "on or off"),
        ("POOLER_PREPARED_STATEMENTS", "on", "does not name the server behind a pooler"),
        ("PUBLIC_ORIGIN", "microblog.example", "https://"),
        ("PUBLIC_ORIGIN", "ftp://microblog.example", "https://"),
        ("PUBLIC_ORIGIN", "https://microblog.example/blog", "no path"),
        ("PUBLIC_ORIGIN", "https://microblog.example:99999", "port"),
    ],
)
def test_bad_value_is_refused_with_the_variable_named(variable, value, fragment):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_public_origin_is_kept_without_a_trailing_slash():
    assert Settings.from_env({}).public_origin is None
    settings = Settings.from_env({"PUBLIC_ORIGIN": "https://microblog.example:8443/"})
    assert settings.public_origin == "https://microblog.example:8443"


def test_replicas_are_a_comma_separated_list_of_urls():
    settings = Settings.from_env(
        {
            "REPLICA_DATABASE_URL": "postgresql://r1/app, ,postgresql://u:p,w@r2:5433/app,"
            "postgresql://r3a,r3b:5434/app?target_session_attrs=standby"
        }
    )
    assert settings.replica_database_urls == (
        "postgresql://r1/app",
        "postgresql://u:p,w@r2:5433/app",
        "postgresql://r3a,r3b:5434/app?target_session_attrs=standby",
    )
    assert Settings.from_env({}).replica_database_urls == ()


def test_replica_lag_limit_is_a_duration_of_five_seconds_by_default():
    assert Settings.from_env({}).replica_max_lag == 5.0
    assert Settings.from_env({"REPLICA_MAX_LAG": "500ms"}).replica_max_lag == 0.5


def test_a_replica_url_that_is_the_primary_is_refused():
    primary = "postgresql://db/app"
    for environ in (
        {"DATABASE_URL": primary, "REPLICA_DATABASE_URL": f"postgresql://r1/app,{primary}"},
        {
            "DATABASE_URL": "postgresql://pgbouncer:6432/app",
            "DATABASE_DIRECT_URL": primary,
            "REPLICA_DATABASE_URL": primary,
        },
    ):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env(environ)
        assert raised.value.variable == "REPLICA_DATABASE_URL"


def test_the_direct_url_defaults_to_none_and_accepts_the_primary_itself():
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://pgbouncer:6432/app",
            "DATABASE_DIRECT_URL": "postgresql://db/app",
        }
    )
    assert settings.database_direct_url == "postgresql://db/app"
    assert Settings.from_env({}).database_direct_url is None


def test_database_url_with_a_socket_host_is_accepted():
    url = "postgresql://postgres:@/microblog?host=/tmp/socket-dir"
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"MICROBLOG_ENV": "production", "SECRET_KEY_BASE": GOOD_SECRET}, "DATABASE_URL"),
        ({"MICROBLOG_ENV": "production", "DATABASE_URL": "postgresql://db/x"}, "SECRET_KEY_BASE"),
    ],
)
def test_production_requires_a_database_and_a_secret(environ, missing):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    assert raised.value.variable == missing


def test_production_defaults_to_json_logs():
    settings = Settings.from_env(
        {
            "MICROBLOG_ENV": "production",
            "DATABASE_URL": "postgresql://db/x",
            "SECRET_KEY_BASE": GOOD_SECRET,
        }
    )
    assert settings.is_production
    assert settings.effective_log_format == "json"


def test_secrets_and_urls_stay_out_of_repr():
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:hunter2-password@pgbouncer/x",
            "DATABASE_DIRECT_URL": "postgresql://app:hunter3-password@db/x",
            "REPLICA_DATABASE_URL": "postgresql://app:hunter4-password@replica/x",
            "SECRET_KEY_BASE": "k" * 40,
            "SECRET_KEY_FALLBACKS": "f" * 40,
        }
    )
    text = repr(settings)
    assert "hunter" not in text
    assert "k" * 40 not in text
    assert "f" * 40 not in text


def test_fallback_keys_are_a_list():
    settings = Settings.from_env({"SECRET_KEY_FALLBACKS": f"{'a' * 32}, {'b' * 32}"})
    assert settings.secret_key_fallbacks == ("a" * 32, "b" * 32)


def test_instance_name_defaults_to_host_and_port():
    assert Settings.from_env({}).name_instance("web", 3001).endswith(":3001")
    assert Settings.from_env({"INSTANCE_NAME": "web-1"}).name_instance("web", 3001) == "web-1"


def test_every_setting_is_documented_in_the_configuration_guide():
    guide = (ROOT / "docs" / "configuration.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z_]+)` \|", guide, flags=re.MULTILINE))
    variables = {variable for variable, _ in documented_variables()}
    assert variables - rows == set(), "undocumented settings"
    assert rows - variables == set(), "documented settings that do not exist"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["web", "--port", "99999"], "argument --port: must be a port number, 1 to 65535"),
        (["combined", "--port", "-5"], "argument --port: must be at least 1, got -5"),
        (["worker", "--queues", "''"], "argument --queues: \"''\" is not a queue name"),
        (["worker", "--concurrency", "many"], "argument --concurrency: must be a whole number"),
        (["seed", "--users", "2", "--posts", "1", "--follows", "-5"], "must be at least 0"),
    ],
)
def test_command_line_values_follow_the_settings_rules(arguments, message, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(arguments)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_resolved_urls_send_sessions_to_the_primary_itself_and_keep_passwords_out_of_reprs():
    urls = DatabaseUrls(
        primary="postgresql://app:hunter2@pgbouncer:6432/app",
        direct="postgresql://app:hunter2@db:5432/app",
        queue="postgresql://app:hunter2@pgbouncer:6432/app",
        cache="postgresql://app:hunter2@cache:5432/cache",
        replicas=("postgresql://app:hunter2@replica:5432/app",),
    )
    assert urls.through_pooler
    assert urls.for_sessions(urls.queue) == urls.direct
    assert urls.for_sessions(urls.cache) == urls.cache, "a database of its own is used as given"
    assert "hunter2" not in repr(urls)
    assert not dataclasses.replace(urls, direct=urls.primary).through_pooler


def test_pooler_prepared_statements_go_with_a_pooler():
    pooled = {
        "DATABASE_URL": "postgresql://pgbouncer:6432/app",
        "DATABASE_DIRECT_URL": "postgresql://db/app",
    }
    assert not Settings.from_env(pooled).pooler_prepared_statements
    prepared = Settings.from_env({**pooled, "POOLER_PREPARED_STATEMENTS": "on"})
    assert prepared.pooler_prepared_statements
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {"DATABASE_URL": "postgresql://db/app", "POOLER_PREPARED_STATEMENTS": "on"}
        )
    assert raised.value.variable == "POOLER_PREPARED_STATEMENTS"
