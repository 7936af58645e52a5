"""Settings: names and defaults of the original (K10), parsing, the YAML file, errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings, describe_settings_error, split_symbol


def test_defaults() -> None:
    s = Settings()
    assert (s.host, s.port) == ("127.0.0.1", 8080)  # F15: loopback by default
    assert s.market_symbol == "BTCUSDT"
    assert s.market_symbols == ["BTCUSDT"]
    assert s.execution_mode == "sim_engine"
    assert s.market_source == "sim"
    assert s.auth_enabled is False
    assert (s.token_expiry, s.rate_limit_capacity, s.rate_limit_refill) == (3600, 100, 10.0)
    assert s.max_body_size == 1_048_576
    assert s.event_buffer_size == 500
    assert s.sim_balances == {"USDT": Decimal(100000), "BTC": Decimal(0)}
    assert s.effective_database_url == "sqlite:///data/veloz.db"


def test_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELOZ_PORT", "9000")
    monkeypatch.setenv("VELOZ_MARKET_SYMBOL", "  ethusdt ")
    monkeypatch.setenv("VELOZ_MARKET_SYMBOLS", "btcusdt, ETHUSDT")
    monkeypatch.setenv("VELOZ_CORS_ORIGINS", "https://a.test, *.b.test")
    monkeypatch.setenv("VELOZ_AUTH_ENABLED", "YES")
    monkeypatch.setenv("VELOZ_EXECUTION_MODE", " SIM_ENGINE ")
    monkeypatch.setenv("VELOZ_SIM_BALANCES", "usdt:500,btc:1.5")
    monkeypatch.setenv("VELOZ_LOG_LEVEL", "WARN")
    s = Settings()
    assert s.port == 9000
    assert s.market_symbol == "ETHUSDT"
    assert s.market_symbols == ["ETHUSDT", "BTCUSDT"]  # the default symbol comes first
    assert s.cors_origins == ["https://a.test", "*.b.test"]
    assert s.auth_enabled is True
    assert s.execution_mode == "sim_engine"
    assert s.sim_balances == {"USDT": Decimal(500), "BTC": Decimal("1.5")}
    assert s.log_level == "warning"


def test_empty_market_symbol_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELOZ_MARKET_SYMBOL", "  ")
    assert Settings().market_symbol == "BTCUSDT"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VELOZ_PORT", "abc"),
        ("VELOZ_PORT", "70000"),
        ("VELOZ_EXECUTION_MODE", "simulation"),
        ("VELOZ_MAX_BODY_SIZE", "big"),
        ("VELOZ_SIM_BALANCES", "USDT=5"),
        ("VELOZ_MARKET_SYMBOLS", "BTC-USDT"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_settings_error(caught.value)
    assert "\n" not in line
    assert line.startswith("invalid configuration: ")
    assert name.rstrip("S") in line


def test_non_loopback_without_auth_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELOZ_HOST", "0.0.0.0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    line = describe_settings_error(caught.value)
    assert "VELOZ_HOST" in line and "VELOZ_ALLOW_INSECURE" in line
    monkeypatch.setenv("VELOZ_ALLOW_INSECURE", "true")
    assert Settings().host == "0.0.0.0"


def test_yaml_file_with_env_expansion_and_env_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway_config.yaml"
    config.write_text(
        "server:\n  port: 9100\n  bind: 127.0.0.2\n"
        'auth:\n  jwt_secret: "${MY_SECRET}"\n  token_expiry: 60\n'
        "rate_limit:\n  capacity: 5\n  refill_rate: 2.5\n"
        "engine:\n  mode: simulation\n  market_symbol: ethusdt\n"
        "logging:\n  level: debug\n"
        "unknown_section:\n  x: 1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("VELOZ_CONFIG_FILE", str(config))
    monkeypatch.setenv("MY_SECRET", "s3cret")
    monkeypatch.setenv("VELOZ_TOKEN_EXPIRY", "120")
    s = Settings()
    assert (s.port, s.host) == (9100, "127.0.0.2")
    assert s.jwt_secret.get_secret_value() == "s3cret"
    assert s.token_expiry == 120  # the environment wins over the file
    assert (s.rate_limit_capacity, s.rate_limit_refill) == (5, 2.5)
    assert s.execution_mode == "sim_engine"
    assert s.market_symbol == "ETHUSDT"
    assert s.log_level == "debug"


def test_unreadable_yaml_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VELOZ_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="VELOZ_CONFIG_FILE"):
        Settings()


@pytest.mark.parametrize(
    ("symbol", "parts"),
    [("BTCUSDT", ("BTC", "USDT")), ("ETHBTC", ("ETH", "BTC")), ("BTCFDUSD", ("BTC", "FDUSD"))],
)
def test_split_symbol(symbol: str, parts: tuple[str, str]) -> None:
    assert split_symbol(symbol) == parts


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELOZ_BINANCE_API_SECRET", "very-secret")
    monkeypatch.setenv("VELOZ_ADMIN_PASSWORD", "hunter2")
    shown = repr(Settings())
    assert "very-secret" not in shown
    assert "hunter2" not in shown


def test_redis_needs_a_shared_postgresql_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELOZ_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "VELOZ_REDIS_URL" in describe_settings_error(caught.value)

    monkeypatch.setenv("VELOZ_DATABASE_URL", "postgresql+psycopg://veloz@127.0.0.1/veloz")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "VELOZ_MASTER_KEY" in describe_settings_error(caught.value)
    monkeypatch.setenv("VELOZ_MASTER_KEY", "m" * 40)
    settings = Settings()
    assert (settings.redis_url, settings.leader_lease_ms) == ("redis://127.0.0.1:6379/0", 3000)

    monkeypatch.setenv("VELOZ_AUTH_ENABLED", "true")
    monkeypatch.setenv("VELOZ_JWT_SECRET", "j" * 32)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "VELOZ_API_KEY_SECRET" in describe_settings_error(caught.value)
    monkeypatch.setenv("VELOZ_API_KEY_SECRET", "k" * 32)
    assert Settings().auth_enabled
