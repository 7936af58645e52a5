"""POST /api/config (F7): admin:config, validated, stored, applied at once where safe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.core.config import Settings
from tests.conftest import Gateway, running_gateway

SettingsFactory = Callable[..., Settings]
ADMIN_PASSWORD = "correct-horse-1"


def admin(gateway: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.runtime.auth.tokens.issue_access('admin')}"}


async def change(gateway: Gateway, body: dict[str, Any]) -> Any:
    response = await gateway.client.post("/api/config", json=body, headers=admin(gateway))
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_lowered_rate_limit_bites_at_once_and_survives_a_restart(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD)
    async with running_gateway(settings) as gateway:
        answer = await change(gateway, {"rate_limit_capacity": 2, "rate_limit_refill": 0.001})
        assert answer == {
            "ok": True,
            "message": "Configuration saved and applied.",
            "applied": ["rate_limit_capacity", "rate_limit_refill"],
            "restart_required": [],
        }
        headers = admin(gateway)
        statuses = [
            (await gateway.client.get("/api/market", headers=headers)).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert gateway.runtime.settings.rate_limit_capacity == 2
    async with running_gateway(settings) as gateway:
        headers = admin(gateway)
        config = (await gateway.client.get("/api/config", headers=headers)).json()
        assert config["effective"]["rate_limit_capacity"] == 2
        assert gateway.runtime.auth.limiter.capacity == 2


async def test_changes_that_wait_for_a_restart_say_so(gateway: Gateway) -> None:
    answer = await change(gateway, {"event_buffer_size": 50, "log_level": "debug"})
    assert answer["applied"] == ["log_level"]
    assert answer["restart_required"] == ["event_buffer_size"]
    assert answer["message"].startswith("Configuration saved. Restart")


async def test_a_new_market_is_simulated_at_once(gateway: Gateway) -> None:
    answer = await change(gateway, {"market_symbols": "BTCUSDT,ETHUSDT"})
    assert answer["applied"] == ["market_symbols"]
    gateway.move_market("2200.5", symbol="ETHUSDT")
    market = await gateway.client.get("/api/market", params={"symbol": "ETHUSDT"})
    assert market.json()["price"] == 2200.5
    removed = await change(gateway, {"market_symbols": "BTCUSDT"})
    assert removed["restart_required"] == ["market_symbols"]


async def test_risk_limits_apply_at_once(gateway: Gateway) -> None:
    await change(gateway, {"risk_max_order_qty": "0.5"})
    refused = await gateway.client.post("/api/order", json={"qty": 1, "price": 1000})
    assert refused.json()["error"] == "max_order_qty_exceeded"


async def test_invalid_and_unknown_settings_are_refused(gateway: Gateway) -> None:
    bad = await gateway.client.post("/api/config", json={"rate_limit_capacity": "many"},
                                    headers=admin(gateway))  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_params"
    assert bad.json()["details"][0]["field"] == "rate_limit_capacity"
    unknown = await gateway.client.post("/api/config", json={"jwt_secret": "x" * 40},
                                        headers=admin(gateway))  # fmt: skip
    assert unknown.status_code == 400
    assert unknown.json()["message"] == (
        "these settings cannot be changed at run time: ['jwt_secret']"
    )
    assert gateway.runtime.settings.rate_limit_capacity == 100


@pytest.mark.parametrize(
    ("change_", "expected"),
    [
        ({"refresh_rotation": 0}, "boolean"),
        ({"rate_limit_capacity": "5"}, "integer"),
        ({"rate_limit_capacity": True}, "integer"),
        ({"audit_retention": "auth=5"}, "object"),
    ],
)
async def test_values_must_have_the_documented_json_type(
    gateway: Gateway, change_: dict[str, Any], expected: str
) -> None:
    """The settings model alone would turn 0 into false and "5" into 5."""
    answer = await gateway.client.post("/api/config", json=change_, headers=admin(gateway))
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_params"
    [detail] = answer.json()["details"]
    assert detail["field"] == next(iter(change_))
    assert detail["type"] == "type_error"
    assert detail["message"] == f"must be of type {expected}"


async def test_text_forms_of_lists_and_decimals_stay_accepted(gateway: Gateway) -> None:
    answer = await change(gateway, {"cors_origins": "https://a.example,https://b.example",
                                    "risk_max_order_notional": "5000.5",
                                    "rate_limit_capacity": 7.0})  # fmt: skip
    assert sorted(answer["applied"]) == [
        "cors_origins", "rate_limit_capacity", "risk_max_order_notional",
    ]  # fmt: skip
    assert gateway.runtime.settings.rate_limit_capacity == 7


async def test_only_admin_config_may_change_settings(make_settings: SettingsFactory) -> None:
    settings = make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD)
    async with running_gateway(settings) as gateway:
        await gateway.runtime.auth.set_roles("viewer-1", ["viewer"], by="test")
        await gateway.runtime.auth.create_user("viewer-1", "viewer-password", ["viewer"], "t")
        token = gateway.runtime.auth.tokens.issue_access("viewer-1")
        response = await gateway.client.post(
            "/api/config", json={"log_level": "debug"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "Required permissions: admin:config",
        }
        anonymous = await gateway.client.post("/api/config", json={"log_level": "debug"})
        assert anonymous.status_code == 401
        config = (await gateway.client.get("/api/config", headers=admin(gateway))).json()
        assert config["effective"]["admin_password"] == "**********"  # secrets never shown
        assert config["effective"]["jwt_secret"] == ""  # not set: generated into the data dir
