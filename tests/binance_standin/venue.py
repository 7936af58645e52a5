"""The stand-in venue's state: accounts, orders, matching, recorded requests and faults.

Written for the gateway's tests from the venue's public API documents: it checks what a real
venue checks (signature, key, timestamp window), answers in the venue's shapes, and lets a
test fill orders, inject failures and drop streams.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

EIGHT = Decimal("0.00000001")
Push = Callable[[str, dict[str, Any]], Awaitable[None]]  # (api key, event)


def fmt(value: Decimal) -> str:
    """Numbers as the venue writes them: strings with eight decimals."""
    return str(value.quantize(EIGHT))


class VenueError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str  # the raw query string, byte for byte
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class Fault:
    """Answer the next matching call(s) with this instead of (or after) serving them."""

    method: str | None
    path: str
    status: int
    body: Any = None
    retry_after: int | None = None
    after_processing: bool = False  # the call takes effect, then the answer is this fault
    times: int = 1


@dataclass
class Order:
    order_id: int
    api_key: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    qty: Decimal
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    status: str = "NEW"
    time_ms: int = 0
    update_ms: int = 0

    def rest_view(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "origQty": fmt(self.qty),
            "executedQty": fmt(self.executed),
            "cummulativeQuoteQty": fmt(self.quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "time": self.time_ms,
            "updateTime": self.update_ms,
        }


@dataclass
class Account:
    secret: str
    balances: dict[str, list[Decimal]] = field(default_factory=dict)  # asset -> [free, locked]
    can_withdraw: bool = False


class Venue:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.orders: dict[tuple[str, str], Order] = {}  # (api key, client id) -> order
        self.next_order_id = 1000
        self.next_trade_id = 1
        self.clock_offset_ms = 0  # the venue's clock minus the real one
        self.used_weight = 0
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.prices: dict[str, Decimal] = {"BTCUSDT": Decimal("50000")}
        self.sapi_available = True
        self.push: Push | None = None  # set by the server: sends to the account's streams

    # --- set-up -----------------------------------------------------------------------------
    def add_account(self, api_key: str, secret: str, **balances: str) -> Account:
        account = Account(secret, {a: [Decimal(v), Decimal(0)] for a, v in balances.items()})
        self.accounts[api_key] = account
        return account

    def fail_next(self, path: str, status: int, code: int | None = None, msg: str = "",
                  *, method: str | None = None, retry_after: int | None = None,
                  after_processing: bool = False, times: int = 1) -> None:  # fmt: skip
        body = {"code": code, "msg": msg} if code is not None else {"msg": msg or "error"}
        self.faults.append(Fault(method, path, status, body, retry_after, after_processing, times))

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def calls(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path == path and fault.method in (None, method):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- authentication ---------------------------------------------------------------------
    def verify(self, query: str, api_key: str | None) -> tuple[Account, dict[str, str]]:
        """A signed call: known key, the signature (last) over everything before it, and a
        timestamp inside recvWindow of the venue's clock."""
        if not api_key or api_key not in self.accounts:
            raise VenueError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, sep, sig = query.rpartition("&signature=")
        if not sep or "&" in sig:
            raise VenueError(400, -1102, "Mandatory parameter 'signature' was not sent.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        return self.check_signed(api_key, payload, sig, params), params

    def check_signed(self, api_key: str, payload: str, sig: str, params: dict[str, str]) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise VenueError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise VenueError(400, -1022, "Signature for this request is not valid.")
        if "timestamp" not in params:
            raise VenueError(400, -1102, "Mandatory parameter 'timestamp' was not sent.")
        timestamp = int(params["timestamp"])
        window = int(params.get("recvWindow", "5000"))
        now = self.now_ms()
        if timestamp >= now + 1000 or now - timestamp > window:
            raise VenueError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return account

    # --- orders -----------------------------------------------------------------------------
    def place(self, api_key: str, params: dict[str, str]) -> tuple[Order, list[Any]]:
        account = self.accounts[api_key]
        for name in ("symbol", "side", "type", "quantity"):
            if not params.get(name):
                raise VenueError(400, -1102, f"Mandatory parameter '{name}' was not sent.")
        for name in ("quantity", "price"):
            if "e" in params.get(name, "").lower():
                raise VenueError(400, -1100, f"Illegal characters found in parameter '{name}'.")
        cid = params.get("newClientOrderId") or f"auto-{self.next_order_id}"
        existing = self.orders.get((api_key, cid))
        if existing is not None and existing.status in ("NEW", "PARTIALLY_FILLED"):
            raise VenueError(400, -2010, "Duplicate order sent.")
        symbol, side = params["symbol"], params["side"]
        qty, price = Decimal(params["quantity"]), Decimal(params.get("price", "0"))
        base, quote = symbol[:-4], symbol[-4:]
        need_asset, need = (quote, qty * price) if side == "BUY" else (base, qty)
        balance = account.balances.setdefault(need_asset, [Decimal(0), Decimal(0)])
        if balance[0] < need:
            raise VenueError(400, -2010, "Account has insufficient balance for requested action.")
        balance[0] -= need
        balance[1] += need
        now = self.now_ms()
        order = Order(self.next_order_id, api_key, cid, symbol, side, params["type"],
                      params.get("timeInForce", "GTC"), price, qty, time_ms=now,
                      update_ms=now)  # fmt: skip
        self.next_order_id += 1
        self.orders[(api_key, cid)] = order
        events = [self._report(order, "NEW"), self._position(account, [need_asset])]
        return order, events

    def find(self, api_key: str, params: dict[str, str]) -> Order:
        cid = params.get("origClientOrderId", "")
        order = self.orders.get((api_key, cid))
        if order is None:
            raise VenueError(400, -2013, "Order does not exist.")
        return order

    def cancel(self, api_key: str, params: dict[str, str]) -> tuple[Order, list[Any]]:
        order = self.orders.get((api_key, params.get("origClientOrderId", "")))
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise VenueError(400, -2011, "Unknown order sent.")
        account = self.accounts[api_key]
        order.status = "CANCELED"
        order.update_ms = self.now_ms()
        asset = self._release(account, order, order.qty - order.executed)
        return order, [self._report(order, "CANCELED"), self._position(account, [asset])]

    def trade(self, api_key: str, client_order_id: str, qty: str, price: str) -> list[Any]:
        """Fill part or all of an order at `price`; returns the events to push."""
        order = self.orders[(api_key, client_order_id)]
        account = self.accounts[api_key]
        amount, at = Decimal(qty), Decimal(price)
        base, quote = order.symbol[:-4], order.symbol[-4:]
        order.executed += amount
        order.quote += amount * at
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        order.update_ms = self.now_ms()
        balances = account.balances
        for asset in (base, quote):
            balances.setdefault(asset, [Decimal(0), Decimal(0)])
        if order.side == "BUY":
            balances[quote][1] -= amount * order.price
            balances[quote][0] += amount * (order.price - at)
            balances[base][0] += amount
        else:
            balances[base][1] -= amount
            balances[quote][0] += amount * at
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        report = self._report(order, "TRADE", last_qty=amount, last_price=at, trade_id=trade_id)
        return [report, self._position(account, [base, quote])]

    def _release(self, account: Account, order: Order, remaining: Decimal) -> str:
        base, quote = order.symbol[:-4], order.symbol[-4:]
        asset, amount = (
            (quote, remaining * order.price) if order.side == "BUY" else (base, remaining)
        )
        balance = account.balances[asset]
        balance[1] -= amount
        balance[0] += amount
        return asset

    def _report(
        self,
        order: Order,
        execution: str,
        *,
        last_qty: Decimal = Decimal(0),
        last_price: Decimal = Decimal(0),
        trade_id: int = -1,
    ) -> dict[str, Any]:
        cancelled = execution == "CANCELED"  # then `c` is the cancel's id, `C` the order's
        return {
            "e": "executionReport", "E": self.now_ms(), "s": order.symbol,
            "c": f"cancel-{order.order_id}" if cancelled else order.client_order_id,
            "C": order.client_order_id if cancelled else "", "S": order.side, "o": order.type,
            "f": order.time_in_force, "q": fmt(order.qty), "p": fmt(order.price),
            "x": execution, "X": order.status, "i": order.order_id, "l": fmt(last_qty),
            "z": fmt(order.executed), "L": fmt(last_price), "t": trade_id,
            "T": order.update_ms, "Z": fmt(order.quote),
        }  # fmt: skip

    def _position(self, account: Account, assets: list[str]) -> dict[str, Any]:
        return {
            "e": "outboundAccountPosition",
            "E": self.now_ms(),
            "u": self.now_ms(),
            "B": [
                {"a": a, "f": fmt(account.balances[a][0]), "l": fmt(account.balances[a][1])}
                for a in dict.fromkeys(assets)
            ],
        }

    def account_view(self, api_key: str) -> dict[str, Any]:
        account = self.accounts[api_key]
        return {
            "canTrade": True,
            "canWithdraw": account.can_withdraw,
            "canDeposit": True,
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": fmt(f), "locked": fmt(locked)}
                for a, (f, locked) in account.balances.items()
            ],
            "permissions": ["SPOT"],
        }
