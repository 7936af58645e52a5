"""Exchange keys (migration 0006) on both databases: large ids, booleans, ordering, removal."""

from __future__ import annotations

from sqlalchemy import Engine

from app.db.exchange_keys import ExchangeKeyRepository, ExchangeKeyRow


def _row(key_id: str, created_ns: int, testnet: bool = True) -> ExchangeKeyRow:
    return ExchangeKeyRow(
        id=key_id,
        exchange="binance",
        name=f"key {key_id}",
        api_key_sealed="sealed-key",
        api_secret_sealed="sealed-secret",
        passphrase_sealed=None,
        permissions='["read", "trade"]',
        created_at="2026-11-24T09:00:00Z",
        created_ns=created_ns,
        status="active",
        testnet=testnet,
    )


def test_keys_are_listed_oldest_first_and_read_back_whole(db: Engine) -> None:
    repository = ExchangeKeyRepository(db)
    assert repository.all() == []
    late, early = _row("b" * 36, 1_800_000_000_000_000_001, testnet=False), _row("a", 5)
    repository.add(late)
    repository.add(early)

    assert [row.id for row in repository.all()] == ["a", "b" * 36]
    assert repository.get("b" * 36) == late  # a nanosecond time beyond 32 bits, testnet False
    assert repository.get("missing") is None


def test_last_use_is_recorded_and_removal_says_whether_a_key_was_there(db: Engine) -> None:
    repository = ExchangeKeyRepository(db)
    repository.add(_row("k1", 1))
    repository.touch("k1", "2026-11-24T09:30:00Z")
    stored = repository.get("k1")
    assert stored is not None and stored.last_used == "2026-11-24T09:30:00Z"

    assert repository.remove("k1") is True
    assert repository.remove("k1") is False
    assert repository.all() == []
