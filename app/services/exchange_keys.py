"""Exchange API keys (contract §4.14): stored encrypted, listed without secrets, tested against
the venue, and put to use at once in Binance mode.

Which Binance credentials trade: the newest stored `binance` key, else the environment's
(`VELOZ_BINANCE_API_KEY`/`_SECRET`). Creating a key switches the live client to it and starts
the user-data stream and poller if they were not running; deleting the key in use falls back
to the next one. With replicas a key changed through any of them is announced, and the leader
(the replica whose venue is attached) reloads it the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine

from app.auth.secrets import load_or_create
from app.core.config import Settings
from app.core.errors import ApiError
from app.core.logging import REDACTOR
from app.core.secretbox import SecretBox, SecretUnreadable
from app.db.exchange_keys import ExchangeKeyRepository, ExchangeKeyRow
from app.execution.binance.engine import BinanceEngine
from app.execution.binance.key_check import check_binance_key, result
from app.execution.binance.limits import VenueLimits
from app.execution.binance.rest import BinanceRestClient
from app.execution.binance.signing import Credentials
from app.schemas.exchange_keys import MAX_NAME, MAX_SECRET, ExchangeKeyCreate, ExchangeKeyTest
from app.schemas.json_types import json_type_errors

log = logging.getLogger("veloz.exchange_keys")

VALID_EXCHANGES = ["binance", "binance_futures", "okx", "bybit", "coinbase"]
STORED_PERMISSIONS = ["read", "trade"]
MASTER_KEY_FILE = "master.key"
REQUIRED = "exchange, apiKey, and apiSecret are required"
# A connection test answers within this many seconds whatever the venue does: each call is
# bounded on its own, but a venue that answers slowly to every one would add them up.
KEY_TEST_DEADLINE = 10.0


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _flag(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


def _check_types(model: type[BaseModel], body: dict[str, Any]) -> None:
    """Text must be text and `testnet` a boolean: `str()` would store `{}` as a passphrase."""
    mistyped = json_type_errors(model, body)
    if mistyped:
        raise ApiError(400, "bad_params", "invalid field types", mistyped)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _public(row: ExchangeKeyRow) -> dict[str, Any]:
    return {
        "id": row.id, "exchange": row.exchange, "name": row.name,
        "permissions": json.loads(row.permissions), "createdAt": row.created_at,
        "lastUsed": row.last_used, "status": row.status, "testnet": row.testnet,
    }  # fmt: skip


class ExchangeKeyService:
    def __init__(self, db: Engine, settings: Settings) -> None:
        self._repo = ExchangeKeyRepository(db)
        self._settings = settings
        self._box: SecretBox | None = None
        self._lock = asyncio.Lock()
        self._own_rest: BinanceRestClient | None = None
        self.test_deadline = KEY_TEST_DEADLINE
        self.venue: BinanceEngine | None = None  # set in Binance mode
        self.active_key_id: str | None = None
        self.on_changed: Callable[[], Awaitable[None]] | None = None  # replicas: tell the others

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the master key: every replica lists, stores and tests keys."""
        configured = self._settings.master_key.get_secret_value()
        path = Path(self._settings.data_dir) / MASTER_KEY_FILE
        master = await asyncio.to_thread(load_or_create, path, configured)
        REDACTOR.add_secrets([master])
        self._box = SecretBox(master)

    async def attach_venue(self, venue: BinanceEngine) -> None:
        """Binance mode, on the replica running the engine: hand the newest stored key to the
        venue client (before it starts); later changes reach it at once."""
        async with self._lock:  # a reload announced meanwhile waits for the key in use
            self.venue = venue
            newest = await self._newest_binance()
            if newest is not None:
                row, credentials = newest
                venue.rest.credentials = credentials
                self.active_key_id = row.id

    async def reload(self) -> None:
        """With replicas, when a key changed through another one: the leader trades with the
        newest stored key, else the environment's; the others hold no venue and do nothing."""
        if self.venue is None:
            return
        async with self._lock:
            newest = await self._newest_binance()
            if (newest[0].id if newest else None) == self.active_key_id:
                return
            if newest is not None:
                row, credentials = newest
                await self.venue.set_credentials(credentials)
                self.active_key_id = row.id
                log.info("Binance credentials switched to exchange key %s", row.id)
            else:
                self.active_key_id = None
                environment = self._environment_credentials()
                await self.venue.set_credentials(environment)
                log.info("Binance credentials: no stored key left; now %s",
                         "the environment's" if environment else "none")  # fmt: skip

    async def stop(self) -> None:
        if self._own_rest is not None:
            await self._own_rest.close()

    # --- storage ----------------------------------------------------------------------------
    @property
    def box(self) -> SecretBox:
        assert self._box is not None, "ExchangeKeyService.start() was not awaited"
        return self._box

    def _credentials(self, row: ExchangeKeyRow) -> Credentials:
        api_key = self.box.open(row.api_key_sealed, f"{row.id}:api_key")
        secret = self.box.open(row.api_secret_sealed, f"{row.id}:api_secret")
        REDACTOR.add_secrets([api_key, secret])
        return Credentials(api_key, secret)

    async def _newest_binance(
        self, without: str | None = None
    ) -> tuple[ExchangeKeyRow, Credentials] | None:
        rows = await asyncio.to_thread(self._repo.all)
        for row in reversed(rows):
            if row.exchange == "binance" and row.id != without:
                try:
                    return row, self._credentials(row)
                except SecretUnreadable:
                    log.error("exchange key %s cannot be decrypted with this master key", row.id)
        return None

    async def list_keys(self) -> list[dict[str, Any]]:
        return [_public(row) for row in await asyncio.to_thread(self._repo.all)]

    async def create(self, body: dict[str, Any]) -> str:
        _check_types(ExchangeKeyCreate, body)
        exchange = _text(body.get("exchange")).lower()
        api_key, api_secret = _text(body.get("apiKey")), _text(body.get("apiSecret"))
        if not exchange or not api_key or not api_secret:
            raise ApiError(400, "bad_params", REQUIRED)
        if exchange not in VALID_EXCHANGES:
            raise ApiError(400, "bad_params", f"Invalid exchange. Valid options: {VALID_EXCHANGES}")
        passphrase = _text(body.get("passphrase")) or None
        if exchange == "okx" and not passphrase:
            raise ApiError(400, "bad_params", "passphrase is required for OKX")
        name = _text(body.get("name")) or "Default"
        longest = max(len(api_key), len(api_secret), len(passphrase or ""))
        if len(name) > MAX_NAME or longest > MAX_SECRET:
            raise ApiError(400, "bad_params", f"name is limited to {MAX_NAME} characters, "
                           f"apiKey, apiSecret and passphrase to {MAX_SECRET}")  # fmt: skip
        REDACTOR.add_secrets([api_key, api_secret, passphrase or ""])
        key_id = str(uuid.uuid4())
        box = self.box
        row = ExchangeKeyRow(
            id=key_id,
            exchange=exchange,
            name=name,
            api_key_sealed=box.seal(api_key, f"{key_id}:api_key"),
            api_secret_sealed=box.seal(api_secret, f"{key_id}:api_secret"),
            passphrase_sealed=box.seal(passphrase, f"{key_id}:passphrase") if passphrase else None,
            permissions=json.dumps(STORED_PERMISSIONS),
            created_at=_now_iso(),
            created_ns=time.time_ns(),
            status="active",
            testnet=_flag(body.get("testnet")),
        )
        try:
            await asyncio.to_thread(self._repo.add, row)
        except Exception as exc:
            raise ApiError(500, "keychain_error", "the key could not be stored") from exc
        if exchange == "binance" and self.venue is not None:
            async with self._lock:
                await self.venue.set_credentials(Credentials(api_key, api_secret))
                self.active_key_id = key_id
            log.info("Binance credentials switched to exchange key %s", key_id)
        await self._announce()
        return key_id

    async def delete(self, key_id: str) -> None:
        try:
            removed = await asyncio.to_thread(self._repo.remove, key_id)
        except Exception as exc:
            raise ApiError(500, "keychain_error", "the key could not be deleted") from exc
        if not removed:
            raise ApiError(404, "not_found")
        if self.venue is not None and key_id == self.active_key_id:
            async with self._lock:
                await self._fall_back(key_id)
        await self._announce()

    async def _announce(self) -> None:
        if self.on_changed is None:
            return
        try:
            await self.on_changed()
        except Exception:  # stored already: the leader picks it up at its next takeover
            log.exception("announcing an exchange key change to the other replicas failed")

    def _environment_credentials(self) -> Credentials | None:
        secret = self._settings.binance_api_secret.get_secret_value()
        env_key = self._settings.binance_api_key
        return Credentials(env_key, secret) if env_key and secret else None

    async def _fall_back(self, deleted: str) -> None:
        """The key in use is gone: the next stored one, else the environment's, else none."""
        assert self.venue is not None
        newest = await self._newest_binance(without=deleted)
        credentials: Credentials | None
        if newest is not None:
            row, credentials = newest
            self.active_key_id = row.id
        else:
            self.active_key_id = None
            credentials = self._environment_credentials()
        await self.venue.set_credentials(credentials)
        now_using = self.active_key_id or ("the environment's" if credentials else "none")
        log.info("Binance credentials: exchange key %s deleted; now %s", deleted, now_using)

    # --- connection test --------------------------------------------------------------------
    async def test(self, body: dict[str, Any]) -> dict[str, Any]:
        _check_types(ExchangeKeyTest, body)
        key_id = _text(body.get("keyId"))
        if key_id:
            row = await asyncio.to_thread(self._repo.get, key_id)
            if row is None:
                raise ApiError(404, "not_found", "Key not found")
            try:
                credentials = self._credentials(row)
            except SecretUnreadable as exc:
                raise ApiError(500, "keychain_error", str(exc)) from exc
            exchange, testnet = row.exchange, row.testnet
        else:
            exchange = _text(body.get("exchange")).lower()
            api_key, api_secret = _text(body.get("apiKey")), _text(body.get("apiSecret"))
            if not exchange or not api_key or not api_secret:
                raise ApiError(
                    400, "bad_params", "Either keyId or (exchange, apiKey, apiSecret) required"
                )
            # Not added to the log redactor: nothing logs them, and callers could grow it.
            credentials, testnet = Credentials(api_key, api_secret), _flag(body.get("testnet"))
        if exchange != "binance":
            reason = (
                f"Unsupported exchange: {exchange}"
                if exchange not in VALID_EXCHANGES
                else f"Connection tests for {exchange} are not available in this gateway"
            )
            return result(exchange, error=reason)
        base_url = (
            self._settings.binance_trade_base_url if testnet else self._settings.binance_base_url
        )
        try:
            async with asyncio.timeout(self.test_deadline):
                outcome = await check_binance_key(self._rest(), base_url, credentials, exchange)
        except TimeoutError:
            return result(
                exchange, error=f"Connection failed: no answer within {self.test_deadline:g} s"
            )
        except Exception as exc:
            log.exception("exchange key test failed")
            raise ApiError(500, "test_failed", type(exc).__name__) from exc
        if key_id and outcome["success"]:
            await asyncio.to_thread(self._repo.touch, key_id, _now_iso())
        return outcome

    def _rest(self) -> BinanceRestClient:
        """The venue's own client (sharing its limits and bans) when trading, else ours."""
        if self.venue is not None:
            return self.venue.rest
        if self._own_rest is None:
            limits = VenueLimits(self._settings.binance_weight_budget)
            self._own_rest = BinanceRestClient(self._settings.binance_trade_base_url, None, limits)
        return self._own_rest
