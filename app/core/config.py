"""Gateway settings: environment (`VELOZ_*`) over an optional YAML file over defaults."""

from __future__ import annotations

import ipaddress
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "VELOZ_"

# Quote assets we recognise at the end of a symbol, longest first so "FDUSD" wins over "USD".
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH", "BNB")

# Starting prices for the simulator; any other symbol starts at 100.
DEFAULT_START_PRICES = {"BTCUSDT": "42000", "ETHUSDT": "2200", "SOLUSDT": "95", "BNBUSDT": "310"}

CommaList = Annotated[list[str], NoDecode]


def split_symbol(symbol: str) -> tuple[str, str]:
    """Split an exchange symbol such as BTCUSDT into (base, quote)."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split symbol {symbol!r} into base and quote asset")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _parse_pairs(value: Any) -> Any:
    """Parse "A:1,B:2" into {"A": "1", "B": "2"}; mappings pass through."""
    if isinstance(value, str):
        pairs: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, amount = item.partition(":")
            if not sep:
                raise ValueError(f"expected NAME:VALUE pairs, got {item.strip()!r}")
            pairs[key.strip().upper()] = amount.strip()
        return pairs
    return value


class Settings(BaseSettings):
    """Every setting of the gateway. Names are the environment variables without `VELOZ_`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        validate_default=True,
    )

    # --- server -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    allow_insecure: bool = False
    max_body_size: int = Field(1_048_576, ge=1)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "text"] = "json"
    production_mode: bool = False
    cors_origins: CommaList = []
    cors_credentials: bool = False
    config_file: Path | None = None
    static_dir: Path | None = None
    preset: str = "dev"

    # --- storage ----------------------------------------------------------------------------
    data_dir: Path = Path("./data")
    database_url: str = ""

    # --- replicas: several gateways sharing PostgreSQL and Redis (app/replication) -----------
    redis_url: str = ""
    leader_lease_ms: int = Field(3000, ge=500, le=60_000)

    # --- market and execution ---------------------------------------------------------------
    market_source: Literal["sim", "binance_rest", "binance_ws"] = "sim"
    market_symbol: str = "BTCUSDT"
    market_symbols: CommaList = []
    execution_mode: Literal["sim_engine", "binance_testnet_spot"] = "sim_engine"
    binance_base_url: str = "https://api.binance.com"
    binance_trade_base_url: str = "https://testnet.binance.vision"
    binance_api_key: str = ""
    binance_api_secret: SecretStr = SecretStr("")
    binance_ws_base_url: str = "wss://testnet.binance.vision/ws"
    # Binance connectivity beyond the original: the WebSocket API carries the user-data stream.
    binance_ws_api_url: str = "wss://ws-api.testnet.binance.vision/ws-api/v3"
    binance_market_ws_url: str = "wss://stream.binance.com:9443"
    binance_recv_window: int = Field(5000, ge=1, le=60_000)
    binance_weight_budget: int = Field(4800, ge=1, lt=6000)  # of the venue's 6000 per minute
    master_key: SecretStr = SecretStr("")  # encrypts stored exchange secrets

    engine_cmd: str = ""  # an external engine process instead of the in-process simulator

    # --- simulator --------------------------------------------------------------------------
    sim_seed: int | None = None
    sim_tick_ms: int = Field(200, ge=1, le=60_000)
    sim_volatility: Decimal = Field(Decimal("0.0005"), ge=0, le=Decimal("0.1"))
    sim_liquidity: Decimal = Field(Decimal("50000"), gt=0)
    sim_balances: Annotated[dict[str, Decimal], NoDecode] = {
        "USDT": Decimal("100000"),
        "BTC": Decimal("0"),
    }
    sim_start_prices: Annotated[dict[str, Decimal], NoDecode] = {}
    risk_max_order_qty: Decimal = Field(Decimal("1000"), gt=0)
    risk_max_order_notional: Decimal = Field(Decimal("1000000"), gt=0)

    # --- events and streaming ---------------------------------------------------------------
    event_buffer_size: int = Field(500, ge=1, le=1_000_000)
    sse_max_clients: int = Field(2000, ge=1)
    sse_queue_size: int = Field(1000, ge=1)
    sse_keepalive_seconds: float = Field(10.0, gt=0)

    # --- auth (enforced by the identity layer) ----------------------------------------------
    auth_enabled: bool = False
    jwt_secret: SecretStr = SecretStr("")
    token_expiry: int = Field(3600, ge=1)
    admin_password: SecretStr = SecretStr("")
    rate_limit_capacity: int = Field(100, ge=1)
    rate_limit_refill: float = Field(10.0, gt=0)
    refresh_rotation: bool = False
    api_key_secret: SecretStr = SecretStr("")
    ip_whitelist: CommaList = []
    ip_blacklist: CommaList = []
    trusted_proxies: CommaList = []

    # --- audit ------------------------------------------------------------------------------
    audit_log_enabled: bool = True
    audit_retention: Annotated[dict[str, int], NoDecode] = {}  # log type -> days
    audit_queue_size: int = Field(10_000, ge=1)
    audit_cleanup_interval_hours: float = Field(24.0, gt=0)
    # An archive file this large is closed and the day goes on in a new part.
    audit_archive_max_file_mb: int = Field(100, ge=1)

    # --- validators -------------------------------------------------------------------------
    @field_validator(
        "cors_origins",
        "market_symbols",
        "ip_whitelist",
        "ip_blacklist",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _comma_lists(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("audit_retention", mode="before")
    @classmethod
    def _retention(cls, value: Any) -> Any:
        parsed = _parse_pairs(value)
        return (
            {str(k).lower(): v for k, v in parsed.items()} if isinstance(parsed, dict) else parsed
        )

    @field_validator("audit_retention")
    @classmethod
    def _retention_days(cls, value: dict[str, int]) -> dict[str, int]:
        if any(days < 1 for days in value.values()):
            raise ValueError("retention days must be at least 1")
        return value

    @field_validator("sim_balances", "sim_start_prices", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        return _parse_pairs(value)

    @field_validator("market_symbol", mode="before")
    @classmethod
    def _market_symbol(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().upper() or "BTCUSDT"
        return value

    @field_validator("ip_whitelist", "ip_blacklist", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from exc
        return value

    @field_validator("static_dir", mode="before")
    @classmethod
    def _static_dir(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        path = Path(value).expanduser()
        if not (path / "index.html").is_file():
            raise ValueError(f"{str(path)!r} is not a directory holding index.html")
        return path

    @field_validator("market_symbols")
    @classmethod
    def _symbols_upper(cls, value: list[str]) -> list[str]:
        return [symbol.upper() for symbol in value]

    @field_validator("execution_mode", "market_source", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "warning" if value == "warn" else value
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        symbols = [self.market_symbol, *(s for s in self.market_symbols if s != self.market_symbol)]
        for symbol in symbols:
            try:
                if not re.fullmatch(r"[A-Z0-9]{2,20}", symbol):
                    raise ValueError(f"invalid symbol {symbol!r}")
                split_symbol(symbol)
            except ValueError as exc:
                raise ValueError(f"VELOZ_MARKET_SYMBOL(S): {exc}") from exc
        self.market_symbols = symbols
        if self.auth_enabled:
            jwt_secret = self.jwt_secret.get_secret_value()
            if jwt_secret and len(jwt_secret) < 32:
                raise ValueError(
                    "VELOZ_JWT_SECRET: at least 32 characters, or leave it empty to have one "
                    "generated and kept in the data dir"
                )
            password = self.admin_password.get_secret_value()
            if password and len(password) < 8:
                raise ValueError("VELOZ_ADMIN_PASSWORD: at least 8 characters")
        if self.redis_url and not self.effective_database_url.startswith("postgresql"):
            raise ValueError(
                "VELOZ_REDIS_URL: replicas share their durable state, so VELOZ_DATABASE_URL "
                "must name a PostgreSQL database (postgresql+psycopg://...)"
            )
        if self.redis_url and not self.master_key.get_secret_value():
            raise ValueError(
                "VELOZ_MASTER_KEY: replicas must share it; one generated per data dir would "
                "leave exchange keys stored through one replica unreadable on the others"
            )
        if self.redis_url and self.auth_enabled:
            for name, secret in (("JWT", self.jwt_secret), ("API_KEY", self.api_key_secret)):
                if not secret.get_secret_value():
                    raise ValueError(
                        f"VELOZ_{name}_SECRET: replicas must share it; one generated per data "
                        "dir would make each replica refuse the others' credentials"
                    )
        if not _is_loopback(self.host) and not self.auth_enabled and not self.allow_insecure:
            raise ValueError(
                f"VELOZ_HOST: refusing to listen on non-loopback {self.host} with auth "
                "disabled; enable auth or set VELOZ_ALLOW_INSECURE=true"
            )
        return self

    # --- derived values ---------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'veloz.db').as_posix()}"

    @property
    def binance_trade_enabled(self) -> bool:
        return bool(
            self.binance_trade_base_url
            and self.binance_api_key
            and self.binance_api_secret.get_secret_value()
        )

    def start_price(self, symbol: str) -> Decimal:
        if symbol in self.sim_start_prices:
            return self.sim_start_prices[symbol]
        return Decimal(DEFAULT_START_PRICES.get(symbol, "100"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlFileSource(settings_cls))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# gateway_config.yaml shape: (section, key) -> setting name.
YAML_KEYS: dict[tuple[str, str], str] = {
    ("server", "port"): "port",
    ("server", "bind"): "host",
    ("server", "host"): "host",
    ("server", "static_dir"): "static_dir",
    ("server", "max_body_size"): "max_body_size",
    ("server", "cors_origins"): "cors_origins",
    ("server", "data_dir"): "data_dir",
    ("server", "database_url"): "database_url",
    ("server", "redis_url"): "redis_url",
    ("auth", "enabled"): "auth_enabled",
    ("auth", "jwt_secret"): "jwt_secret",
    ("auth", "token_expiry"): "token_expiry",
    ("auth", "admin_password"): "admin_password",
    ("auth", "refresh_rotation"): "refresh_rotation",
    ("auth", "ip_whitelist"): "ip_whitelist",
    ("auth", "ip_blacklist"): "ip_blacklist",
    ("auth", "trusted_proxies"): "trusted_proxies",
    ("rate_limit", "capacity"): "rate_limit_capacity",
    ("rate_limit", "refill_rate"): "rate_limit_refill",
    ("engine", "mode"): "execution_mode",
    ("engine", "market_source"): "market_source",
    ("engine", "market_symbol"): "market_symbol",
    ("engine", "market_symbols"): "market_symbols",
    ("engine", "sim_seed"): "sim_seed",
    ("engine", "command"): "engine_cmd",
    ("binance", "base_url"): "binance_base_url",
    ("binance", "testnet_base_url"): "binance_trade_base_url",
    ("binance", "api_key"): "binance_api_key",
    ("binance", "api_secret"): "binance_api_secret",
    ("binance", "ws_base_url"): "binance_ws_base_url",
    ("binance", "ws_api_url"): "binance_ws_api_url",
    ("binance", "market_ws_url"): "binance_market_ws_url",
    ("audit", "enabled"): "audit_log_enabled",
    ("audit", "retention"): "audit_retention",
    ("audit", "cleanup_interval_hours"): "audit_cleanup_interval_hours",
    ("audit", "max_file_size_mb"): "audit_archive_max_file_mb",
    ("logging", "level"): "log_level",
    ("logging", "format"): "log_format",
}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any) -> Any:
    """Expand ${VAR} references from the environment (unset variables become empty)."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


class YamlFileSource(PydanticBaseSettingsSource):
    """Reads VELOZ_CONFIG_FILE (the gateway_config.yaml shape); the environment wins over it."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole mapping

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
        if not path:
            return {}
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ValueError(f"{ENV_PREFIX}CONFIG_FILE: cannot read {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ValueError(f"{ENV_PREFIX}CONFIG_FILE: invalid YAML in {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"{ENV_PREFIX}CONFIG_FILE: {path} must hold a mapping")
        values: dict[str, Any] = {}
        for section, body in raw.items():
            if not isinstance(body, dict):
                continue
            for key, value in body.items():
                name = YAML_KEYS.get((str(section), str(key)))
                if name is None or value is None:
                    continue
                value = _expand(value)
                if name == "execution_mode" and value == "simulation":
                    value = "sim_engine"
                if value == "":
                    continue
                values[name] = value
        return values


def describe_settings_error(exc: Exception) -> str:
    """One line naming the offending variable(s), for start-up failures."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            loc = error.get("loc") or ()
            message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
            if not loc:  # model-level checks name their variables themselves
                parts.append(message)
                continue
            value = error.get("input")
            shown = ""
            if isinstance(value, str | int | float) and repr(value) not in message:
                shown = f" (got {value!r})"
            parts.append(f"{ENV_PREFIX}{str(loc[0]).upper()}: {message}{shown}")
        return "invalid configuration: " + "; ".join(parts)
    return f"invalid configuration: {exc}"
