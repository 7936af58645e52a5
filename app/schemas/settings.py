"""GUI application settings (contract §4.15): one model per section, in the original's camelCase.

Rules shared by every section model:

* Every field has the original's default, so a stored section may be partial: when the settings
  are loaded, each stored section is shallow-merged over these defaults.
* Known keys are type-checked strictly: no coercion, so `"true"` is not a boolean, `1` is not
  `true` and `"5"` is not a number; NaN and infinities are refused. Integers are accepted where
  a number is expected.
* Unknown keys are kept as they are (`extra="allow"`): clients store their own preferences in
  the sections, and the gateway does not judge them.

Value rules beyond the types (documented per field): fractions (`slippageTolerance`,
`dailyLossLimit`, `circuitBreaker.threshold`) lie in [0, 1]; sizes, amounts, counts and delays are
never negative; `apiRateLimit` and `orderBookDepth` are at least 1; enumerations are listed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel

_SECTION = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

Fraction = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer, so a whole float is one; anything else is left for
    the strict integer check (which refuses 5.5, "5" and booleans)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_integral)]
Count = Annotated[int, Field(ge=0), BeforeValidator(_integral)]

LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"
SYMBOL_PATTERN = r"^[A-Za-z0-9]{2,20}$"
EMAIL_PATTERN = r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"


# --- general ---------------------------------------------------------------------------------


class NotificationSettings(BaseModel):
    model_config = _SECTION

    orderFills: bool = True
    priceAlerts: bool = True
    systemAlerts: bool = True
    sound: bool = True


class GeneralSettings(BaseModel):
    model_config = _SECTION

    language: str = Field("en", pattern=LANGUAGE_PATTERN, description="A language tag: en, zh-CN.")
    theme: Literal["light", "dark", "system"] = "system"
    timezone: str = Field("UTC", min_length=1, max_length=64, description="E.g. UTC, Asia/Tokyo.")
    dateFormat: str = Field("ISO", min_length=1, max_length=64)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)


# --- trading ---------------------------------------------------------------------------------


class TradingSettings(BaseModel):
    model_config = _SECTION

    defaultSymbol: str = Field("BTCUSDT", pattern=SYMBOL_PATTERN, description="Letters, digits.")
    orderConfirmation: bool = True
    doubleClickToTrade: bool = False
    defaultOrderType: Literal["limit", "market"] = "limit"
    defaultTimeInForce: Literal["GTC", "IOC", "FOK"] = "GTC"
    slippageTolerance: Fraction = Field(0.005, description="A fraction: 0.005 is 0.5 %.")


# --- risk ------------------------------------------------------------------------------------


class CircuitBreakerSettings(BaseModel):
    model_config = _SECTION

    enabled: bool = True
    threshold: Fraction = Field(0.1, description="A fraction of the account: 0.1 is 10 %.")
    cooldownMinutes: Count = 60


class ConfirmationSettings(BaseModel):
    model_config = _SECTION

    largeOrders: bool = True
    largeOrderThreshold: NonNegative = 1000
    marketOrders: bool = True


class RiskSettings(BaseModel):
    model_config = _SECTION

    maxPositionSize: NonNegative = 0.1
    maxPositionValue: NonNegative = 10000
    dailyLossLimit: Fraction = Field(0.05, description="A fraction of the account: 0.05 is 5 %.")
    maxOpenOrders: Count = 10
    circuitBreaker: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)
    requireConfirmation: ConfirmationSettings = Field(default_factory=ConfirmationSettings)


# --- advanced, security ----------------------------------------------------------------------


class AdvancedSettings(BaseModel):
    model_config = _SECTION

    apiRateLimit: Integer = Field(10, ge=1, description="Requests per second.")
    websocketReconnectDelay: Count = Field(5000, description="Milliseconds.")
    orderBookDepth: Integer = Field(20, ge=1, le=5000)
    logLevel: Literal["debug", "info", "warn", "error"] = "info"
    telemetry: bool = True


class SecuritySettings(BaseModel):
    model_config = _SECTION

    twoFactorEnabled: bool = False
    recoveryEmail: str = Field("", max_length=254, pattern=EMAIL_PATTERN, description="Or empty.")
    sessionTimeout: Count = Field(30, description="Minutes.")
    requirePasswordForTrades: bool = False


# --- the document ----------------------------------------------------------------------------

SECTION_MODELS: dict[str, type[BaseModel]] = {
    "general": GeneralSettings,
    "trading": TradingSettings,
    "risk": RiskSettings,
    "advanced": AdvancedSettings,
    "security": SecuritySettings,
}
REQUIRED_SECTIONS = ("general", "trading", "risk", "advanced")
SENSITIVE_KEY = "apiKeys"  # left out of an export unless include_sensitive=true


def default_settings() -> dict[str, Any]:
    """The settings when nothing is stored (§4.15), a new copy on every call."""
    return {name: model().model_dump() for name, model in SECTION_MODELS.items()}


class SettingsConfig(BaseModel):
    """The whole settings document. `general`, `trading`, `risk` and `advanced` are required when
    the document is replaced or imported; other top-level keys (`apiKeys`, clients' own sections)
    are kept as they are."""

    model_config = ConfigDict(
        strict=True,
        extra="allow",
        allow_inf_nan=False,
        json_schema_extra={"examples": [default_settings()]},
    )

    general: GeneralSettings
    trading: TradingSettings
    risk: RiskSettings
    advanced: AdvancedSettings
    security: SecuritySettings = Field(default_factory=SecuritySettings)


# --- request and response bodies (documentation; the bodies are read by hand) ----------------


class SettingsSectionUpdate(BaseModel):
    """Shallow-merge `data` into one section, creating the section if absent."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"section": "general", "data": {"theme": "dark"}}]}
    )

    section: str = Field(min_length=1, max_length=64)
    data: dict[str, Any]


class SettingsUpdate(RootModel[SettingsSectionUpdate | SettingsConfig]):
    """The body of POST /api/settings: one section's changes, or a whole new document."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"section": "general", "data": {"theme": "dark"}}, default_settings()]
        }
    )

    @classmethod
    def openapi_refine(cls, components: dict[str, Any]) -> None:
        """A known section's `data` must suit that section (the merged section is validated);
        any other section takes any object."""
        known = list(SECTION_MODELS)
        update = components["SettingsSectionUpdate"]
        update["anyOf"] = [
            {
                "properties": {
                    "section": {"const": name},
                    "data": {"$ref": f"#/components/schemas/{model.__name__}"},
                }
            }
            for name, model in SECTION_MODELS.items()
        ] + [{"properties": {"section": {"not": {"enum": known}}}}]


class SettingsImport(BaseModel):
    """The body of POST /api/settings/import: the document, or its JSON text (an exported
    file)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _exported_text(schema))

    config: SettingsConfig | str


def _exported_text(schema: dict[str, Any]) -> None:
    """The text form of `config` is an exported file: JSON holding a settings document."""
    branches = schema["properties"]["config"]["anyOf"]
    document = next(branch for branch in branches if "$ref" in branch)
    text = next(branch for branch in branches if branch.get("type") == "string")
    text.update(minLength=1, contentMediaType="application/json", contentSchema=dict(document))
    text["description"] = "An exported file's text."
    schema["examples"] = [
        {"config": {"general": {"theme": "dark"}, "trading": {}, "risk": {}, "advanced": {}}}
    ]


class SettingsSaved(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": True, "settings": default_settings()}]}
    )

    ok: bool = True
    settings: SettingsConfig = Field(description="The settings now in effect.")


class SettingsImported(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "message": "Configuration imported successfully",
                    "settings": default_settings(),
                }
            ]
        }
    )

    ok: bool = True
    message: str = "Configuration imported successfully"
    settings: SettingsConfig = Field(description="The document as saved, not merged with defaults.")
