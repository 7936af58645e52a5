"""Latest market price per symbol, folded from `market` events (contract §6.6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.jsonutil import to_decimal


@dataclass(slots=True)
class Quote:
    symbol: str
    price: Decimal | None
    ts_ns: int | None

    def to_public(self) -> dict[str, Any]:
        price = None if self.price is None else float(self.price)
        return {"symbol": self.symbol, "price": price, "ts_ns": self.ts_ns}


class MarketStore:
    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}
        self.dirty: set[str] = set()

    def restore(self, quotes: list[Quote]) -> None:
        self._quotes = {q.symbol: q for q in quotes}

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def quotes(self) -> list[Quote]:
        return list(self._quotes.values())

    def apply(self, event: Mapping[str, Any]) -> bool:
        if event.get("type") != "market" or not event.get("symbol"):
            return False
        symbol = str(event["symbol"])
        ts_ns = event.get("ts_ns")
        self._quotes[symbol] = Quote(
            symbol=symbol,
            price=to_decimal(event.get("price")),
            ts_ns=int(ts_ns) if ts_ns is not None else None,
        )
        self.dirty.add(symbol)
        return True

    def take_dirty(self) -> list[Quote]:
        changed = [self._quotes[s] for s in self.dirty if s in self._quotes]
        self.dirty.clear()
        return changed
