"""Pure folding of engine events into order, account and market state. No HTTP, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.state.account import AccountStore
from app.state.market import MarketStore
from app.state.orders import OrderStore


class GatewayState:
    """The three stores, folded together from one event stream."""

    def __init__(self) -> None:
        self.orders = OrderStore()
        self.account = AccountStore()
        self.market = MarketStore()

    def apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "market":
            self.market.apply(event)
        elif kind == "account":
            self.account.apply(event)
        else:
            self.orders.apply(event)
