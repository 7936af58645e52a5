"""A client generated from openapi/openapi.json (openapi-python-client), used for a whole
session against a real gateway process on loopback: log in, trade, manage a key, read the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, TypeVar

from tests.integration.conftest import StartGateway

ADMIN_PASSWORD = "client-admin-password"
T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """Poll `read` until `done` holds (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        value = await read()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


def parsed(response: Any, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.content)
    return response.parsed


async def test_a_generated_python_client_runs_a_full_session(
    python_client: ModuleType, start_gateway: StartGateway
) -> None:
    from veloz_client import AuthenticatedClient, Client
    from veloz_client.api.account import get_account
    from veloz_client.api.api_keys import create_api_key, list_api_keys, revoke_api_key
    from veloz_client.api.audit import query_audit_logs
    from veloz_client.api.auth import login
    from veloz_client.api.market import get_market
    from veloz_client.api.orders import cancel_order, get_order_state, place_order
    from veloz_client.models import (
        ApiKeyCreate,
        CancelRequest,
        CancelRequestForm,
        ErrorResponse,
        LoginRequest,
        OrderRequest,
        OrderRequestSide,
    )

    server = await start_gateway(
        env={"VELOZ_AUTH_ENABLED": "true", "VELOZ_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )

    async with Client(base_url=server.url) as anonymous:
        tokens = parsed(
            await login.asyncio_detailed(
                client=anonymous, body=LoginRequest(user_id="admin", password=ADMIN_PASSWORD)
            ),
            200,
        )
        refused = parsed(await get_market.asyncio_detailed(client=anonymous), 401)
        assert isinstance(refused, ErrorResponse)
        assert refused.error == "authentication_required"
    assert tokens.token_type == "Bearer"

    async with AuthenticatedClient(base_url=server.url, token=tokens.access_token) as admin:
        market = await eventually(
            lambda: get_market.asyncio(client=admin), lambda m: m.price is not None
        )
        price = round(market.price, 2)

        # A buy above the market fills; its state says so.
        placed = parsed(
            await place_order.asyncio_detailed(
                client=admin,
                body=OrderRequest(
                    qty=0.01, side=OrderRequestSide.BUY, price=round(price * 1.05, 2),
                    client_order_id="client-fills",
                ),
            ),
            200,
        )  # fmt: skip
        assert placed.ok is True
        assert placed.client_order_id == "client-fills"
        filled = await eventually(
            lambda: get_order_state.asyncio(client=admin, client_order_id="client-fills"),
            lambda state: state.status == "FILLED",
        )
        assert filled.status == "FILLED"
        assert filled.executed_qty == 0.01
        assert filled.side == "BUY"

        # A buy far below the market rests until cancelled (the cancel goes as a form).
        resting = parsed(
            await place_order.asyncio_detailed(
                client=admin,
                body=OrderRequest(qty=0.01, price=round(price * 0.5, 2), client_order_id="rests"),
            ),
            200,
        )
        assert resting.ok is True
        cancelled = parsed(
            await cancel_order.asyncio_detailed(
                client=admin, body=CancelRequestForm(client_order_id="rests")
            ),
            200,
        )
        assert cancelled.ok is True
        state = parsed(
            await get_order_state.asyncio_detailed(client=admin, client_order_id="rests"), 200
        )
        assert state.status == "CANCELLED"
        again = parsed(
            await cancel_order.asyncio_detailed(
                client=admin, body=CancelRequest(client_order_id="no-such-order")
            ),
            404,
        )
        assert again.error == "not_found"

        # An API key works as X-API-Key until it is revoked.
        created = parsed(
            await create_api_key.asyncio_detailed(
                client=admin, body=ApiKeyCreate(name="generated-client", permissions=["trader"])
            ),
            201,
        )
        assert created.key_id.startswith("vk_")
        assert created.api_key.startswith("veloz_")
        async with AuthenticatedClient(
            base_url=server.url, token=created.api_key, prefix="", auth_header_name="X-API-Key"
        ) as by_key:
            account = parsed(await get_account.asyncio_detailed(client=by_key), 200)
            assert {balance.asset for balance in account.balances} >= {"USDT", "BTC"}
            revoked = parsed(
                await revoke_api_key.asyncio_detailed(client=admin, key_id=created.key_id), 200
            )
            assert revoked.ok is True
            assert revoked.key_id == created.key_id
            dead = parsed(await get_account.asyncio_detailed(client=by_key), 401)
            assert dead.error == "invalid_api_key"
        keys = parsed(await list_api_keys.asyncio_detailed(client=admin), 200)
        assert [k.revoked for k in keys.keys if k.key_id == created.key_id] == [True]

        # The audit log holds the session, newest first.
        log = parsed(await query_audit_logs.asyncio_detailed(client=admin, limit="50"), 200)
        actions = [entry.action for entry in log.logs]
        for action in ("login", "place_order", "cancel_order", "create_api_key", "revoke_api_key"):
            assert action in actions, actions
        assert actions.index("revoke_api_key") < actions.index("create_api_key")
        orders = parsed(
            await query_audit_logs.asyncio_detailed(client=admin, type_="order", limit="50"), 200
        )
        placed_ids = {
            entry.details["client_order_id"]
            for entry in orders.logs
            if entry.action == "place_order"
        }
        assert placed_ids == {"client-fills", "rests"}
