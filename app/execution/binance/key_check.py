"""Checks an API key against the venue: what it may do, what it holds, how fast the venue is.

A key that may withdraw is refused: the gateway never needs that, and a leaked key with it
can empty the account.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from app.core.jsonutil import to_decimal
from app.execution.binance.rest import BinanceRestClient, RestResult
from app.execution.binance.signing import Credentials

WITHDRAW_REFUSED = (
    "API key has withdrawal permissions. Please create a new key without withdrawal access."
)
SLOW_MS = 500
RESTRICTION_FLAGS = (
    ("enableReading", "read"),
    ("enableSpotAndMarginTrading", "spot"),
    ("enableFutures", "futures"),
    ("enableWithdrawals", "withdraw"),
)
PINGS = 3
PING_GAP = 0.1  # seconds


def result(exchange: str, **fields: Any) -> dict[str, Any]:
    """A connection-test answer with every field present, in the original's order."""
    base: dict[str, Any] = {
        "success": False, "exchange": exchange, "permissions": [], "balanceAvailable": False,
        "latencyMs": 0, "error": None, "warnings": [], "balance": None,
    }  # fmt: skip
    base.update(fields)
    return base


def _failure(exchange: str, answer: RestResult) -> dict[str, Any]:
    if answer.status == 401:
        return result(exchange, error="Invalid API key")
    if answer.status is not None:
        return result(exchange, error=f"API error: {answer.status}")
    text = (answer.error or {}).get("_error", "no answer")
    return result(exchange, error=f"Connection failed: {text}")


async def check_binance_key(
    rest: BinanceRestClient, base_url: str, credentials: Credentials, exchange: str = "binance"
) -> dict[str, Any]:
    warnings: list[str] = []
    restrictions = await rest.request(
        "GET", "/sapi/v1/account/apiRestrictions", signed=True,
        credentials=credentials, base_url=base_url,
    )  # fmt: skip
    permissions: list[str] = []
    if restrictions.ok and isinstance(restrictions.data, dict):
        flags = restrictions.data
        for flag, name in RESTRICTION_FLAGS:
            if flags.get(flag):
                permissions.append(name)
    elif restrictions.status == 404:
        warnings.append(
            "This venue has no /sapi/v1/account/apiRestrictions (the spot testnet does not); "
            "permissions were read from /api/v3/account."
        )
    else:
        return _failure(exchange, restrictions)

    account = await rest.request(
        "GET", "/api/v3/account", {"omitZeroBalances": True}, signed=True,
        credentials=credentials, base_url=base_url,
    )  # fmt: skip
    if not account.ok or not isinstance(account.data, dict):
        return _failure(exchange, account)
    info = account.data
    if not permissions:
        permissions = ["read"]
        permissions += ["spot"] if info.get("canTrade") else []
        permissions += ["withdraw"] if info.get("canWithdraw") else []
    balance: dict[str, float] = {}
    for entry in info.get("balances", []):
        free = to_decimal(entry.get("free")) if isinstance(entry, dict) else None
        if free is not None and free > Decimal(0):
            balance[str(entry.get("asset"))] = float(free)

    latencies: list[float] = []
    for attempt in range(PINGS):
        if attempt:
            await asyncio.sleep(PING_GAP)
        started = time.perf_counter()
        ping = await rest.request("GET", "/api/v3/ping", base_url=base_url)
        if ping.ok:
            latencies.append((time.perf_counter() - started) * 1000)
    latency_ms = round(sum(latencies) / len(latencies)) if latencies else 0
    if not latencies:
        warnings.append("The venue did not answer /api/v3/ping.")
    elif latency_ms > SLOW_MS:
        warnings.append(f"High latency: {latency_ms} ms on average.")

    fields: dict[str, Any] = {
        "permissions": permissions, "balanceAvailable": True, "latencyMs": latency_ms,
        "warnings": warnings, "balance": balance,
    }  # fmt: skip
    if "withdraw" in permissions:
        return result(exchange, error=WITHDRAW_REFUSED, **fields)
    return result(exchange, success=True, **fields)
