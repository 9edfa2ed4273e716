from __future__ import annotations

import pytest

from core.settings import ConfigError, Settings


def test_local_defaults_work_on_this_machine():
    s = Settings.from_env({})
    assert s.database_url.startswith("postgresql://postgres@127.0.0.1:5432/")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.broker_url == "amqp://guest:guest@127.0.0.1:5672/"


def test_production_refuses_placeholder_secrets_and_missing_keys(tmp_path):
    with pytest.raises(ConfigError) as ex:
        Settings.from_env(
            {"APP_ENV": "production", "JWT_PUBLIC_KEYS_PATH": str(tmp_path / "missing")}
        )
    message = str(ex.value)
    assert "CURSOR_SECRET" in message and "JWT_PUBLIC_KEYS_PATH" in message


def test_production_accepts_real_configuration(tmp_path):
    s = Settings.from_env(
        {
            "APP_ENV": "production",
            "CURSOR_SECRET": "s" * 40,
            "JWT_PUBLIC_KEYS_PATH": str(tmp_path),
        }
    )
    assert s.is_production


def test_bad_values_are_explained():
    with pytest.raises(ConfigError, match="FANOUT_THRESHOLD must be an integer"):
        Settings.from_env({"FANOUT_THRESHOLD": "many"})
    with pytest.raises(ConfigError, match="APP_ENV"):
        Settings.from_env({"APP_ENV": "staging"})


def test_passwords_are_merged_into_urls_escaped():
    s = Settings.from_env({"DATABASE_PASSWORD": "p@ss:w/rd"})
    assert (
        s.database_dsn == "postgresql://postgres:p%40ss%3Aw%2Frd@127.0.0.1:5432/twitter"
    )


def test_replicas_waited_for_follow_the_redis_mode_unless_set():
    assert Settings.from_env({}).wait_replicas == 0
    assert Settings.from_env({"REDIS_MODE": "cluster"}).wait_replicas == 1
    set_to = {"REDIS_MODE": "cluster", "REDIS_WAIT_REPLICAS": "0"}
    assert Settings.from_env(set_to).wait_replicas == 0
    with pytest.raises(ConfigError, match="REDIS_WAIT_REPLICAS"):
        Settings.from_env({"REDIS_WAIT_REPLICAS": "-2"}).validate()
