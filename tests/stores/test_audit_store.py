"""Audit entries: insert, search with filters and paging, counts, expiry, delete."""

from __future__ import annotations

from sqlalchemy import Engine

from app.audit.entries import AuditEntry
from app.db.audit import AuditQuery, AuditRepository


def _entry(ts: float, log_type: str, action: str, user: str | None = "alice") -> AuditEntry:
    return AuditEntry(ts, log_type, action, user, "127.0.0.1", {"n": ts, "ü": "✓"}, "req-1")


def test_search_filters_pages_and_counts(db: Engine) -> None:
    repository = AuditRepository(db)
    repository.insert(
        [
            _entry(100.5, "auth", "login"),
            _entry(200.25, "order", "place_order"),
            _entry(300.0, "order", "cancel_order", user="bob"),
            _entry(400.0, "access", "rate_limited", user=None),
        ]
    )

    everything, total = repository.search(AuditQuery(), limit=10, offset=0)
    orders, order_total = repository.search(AuditQuery(log_type="order"), limit=1, offset=1)
    window, _ = repository.search(AuditQuery(start=150, end=350, user_id="alice"), 10, 0)

    assert total == 4
    assert [e.timestamp for e in everything] == [400.0, 300.0, 200.25, 100.5]  # newest first
    assert everything[3] == _entry(100.5, "auth", "login")
    assert (order_total, [e.action for e in orders]) == (2, ["place_order"])
    assert [e.action for e in window] == ["place_order"]
    assert repository.counts() == {"auth": 1, "order": 2, "access": 1}


def test_expired_entries_by_type_and_delete(db: Engine) -> None:
    repository = AuditRepository(db)
    repository.insert([_entry(float(t), "order" if t % 2 else "auth", "x") for t in range(1, 9)])

    old_orders = repository.expired("order", [], before=6, limit=10)
    others = repository.expired(None, ["order"], before=100, limit=2)
    repository.delete([entry_id for entry_id, _ in old_orders])

    assert [e.timestamp for _, e in old_orders] == [1.0, 3.0, 5.0]
    assert [e.timestamp for _, e in others] == [2.0, 4.0]
    assert repository.counts() == {"order": 1, "auth": 4}
    ids = [entry_id for entry_id, _ in repository.expired(None, [], before=100, limit=10)]
    assert ids == sorted(ids) and len(set(ids)) == 5  # ids come from the database, increasing
