"""Account balances folded from `account` events (contract §6.5; F9 merges partial updates)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.jsonutil import to_decimal


@dataclass(slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    def to_public(self) -> dict[str, Any]:
        return {"asset": self.asset, "free": float(self.free), "locked": float(self.locked)}


def parse_balances(entries: Any) -> list[Balance]:
    """Valid {asset, free, locked} entries; no asset → skipped, a bad number → 0."""
    balances: list[Balance] = []
    if not isinstance(entries, list):
        return balances
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("asset"):
            continue
        balances.append(
            Balance(
                asset=str(entry["asset"]),
                free=to_decimal(entry.get("free")) or Decimal(0),
                locked=to_decimal(entry.get("locked")) or Decimal(0),
            )
        )
    return balances


class AccountStore:
    def __init__(self) -> None:
        self._balances: dict[str, Balance] = {}
        self.ts_ns: int | None = None
        self.dirty = False

    def restore(self, balances: Iterable[Balance], ts_ns: int | None) -> None:
        self._balances = {b.asset: b for b in balances}
        self.ts_ns = ts_ns

    def balances(self) -> list[Balance]:
        return list(self._balances.values())

    def get(self, asset: str) -> Balance | None:
        return self._balances.get(asset)

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Fold an `account` event: a full snapshot replaces the whole map; one marked
        `partial` (a venue's changed assets only) merges per asset (F9)."""
        if event.get("type") != "account":
            return False
        balances = parse_balances(event.get("balances"))
        ts_ns = event.get("ts_ns")
        if balances and event.get("partial"):
            self.merge(balances, int(ts_ns) if ts_ns is not None else None)
            return True
        if balances:
            self._balances = {b.asset: b for b in balances}
        elif ts_ns is None:
            return False
        if ts_ns is not None:
            self.ts_ns = int(ts_ns)
        self.dirty = True
        return True

    def merge(self, balances: Iterable[Balance], ts_ns: int | None) -> None:
        """F9: a partial update (only the changed assets) merges per asset."""
        for balance in balances:
            self._balances[balance.asset] = balance
        if ts_ns is not None:
            self.ts_ns = ts_ns
        self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        return {"ts_ns": self.ts_ns, "balances": [b.to_public() for b in self._balances.values()]}
