"""AuditLogger against a real SQLite audit table: order, a stop that writes everything queued,
backpressure with a tiny queue and a slow writer, retries without loss or duplicates, and the
switch that turns it off."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.audit.entries import AuditEntry
from app.audit.logger import AuditLogger
from app.db.audit import AuditRepository
from app.db.database import make_engine, migrate


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(db)
    yield db
    db.dispose()


@pytest.fixture
def repository(engine: Engine) -> AuditRepository:
    return AuditRepository(engine)


def stored(repository: AuditRepository) -> list[AuditEntry]:
    """Every row, in the order it was written (by id)."""
    return [entry for _, entry in repository.expired(None, [], math.inf, 1_000_000)]


class SlowRepository(AuditRepository):
    """Each write takes a while, so the queue fills up behind it."""

    def __init__(self, engine: Engine, delay: float) -> None:
        super().__init__(engine)
        self.delay = delay
        self.batches: list[int] = []

    def insert(self, entries: Sequence[AuditEntry]) -> None:
        time.sleep(self.delay)
        self.batches.append(len(entries))
        super().insert(entries)


class FlakyRepository(AuditRepository):
    """The first `failures` writes fail before anything is stored."""

    def __init__(self, engine: Engine, failures: int) -> None:
        super().__init__(engine)
        self.left = failures
        self.calls = 0
        self._lock = threading.Lock()

    def insert(self, entries: Sequence[AuditEntry]) -> None:
        with self._lock:
            self.calls += 1
            if self.left > 0:
                self.left -= 1
                raise RuntimeError("database is locked")
        super().insert(entries)


async def test_entries_are_written_in_the_order_recorded(repository: AuditRepository) -> None:
    logger = AuditLogger(repository)
    logger.start()
    began = time.time()
    for n in range(50):
        await logger.record(
            "order" if n % 2 else "auth",
            f"action-{n}",
            user_id=f"user-{n}",
            ip_address="10.0.0.7",
            details={"n": n},
            request_id=f"req-{n}",
        )
        if n % 10 == 0:
            await asyncio.sleep(0)  # let the writer take part of them
    await logger.flush()
    rows = stored(repository)
    assert [row.action for row in rows] == [f"action-{n}" for n in range(50)]
    assert [row.timestamp for row in rows] == sorted(row.timestamp for row in rows)
    fifth = rows[5]
    assert fifth.log_type == "order"
    assert fifth.user_id == "user-5"
    assert fifth.ip_address == "10.0.0.7"
    assert fifth.details == {"n": 5}
    assert fifth.request_id == "req-5"
    assert began <= fifth.timestamp <= time.time()
    assert logger.depth == 0
    assert logger.written == 50
    await logger.stop()


async def test_stop_writes_everything_still_queued(repository: AuditRepository) -> None:
    logger = AuditLogger(repository)
    logger.start()
    for n in range(2_000):
        await logger.record("order", "bulk", details={"n": n})
    assert logger.depth == 2_000  # nothing yielded to the writer yet
    await logger.stop()
    assert [row.details["n"] for row in stored(repository)] == list(range(2_000))
    assert logger.written == 2_000
    assert logger.failures == 0


async def test_a_full_queue_makes_callers_wait_and_loses_nothing(engine: Engine) -> None:
    slow = SlowRepository(engine, delay=0.02)
    waits: list[int] = []
    logger = AuditLogger(slow, queue_size=2, on_backpressure=lambda: waits.append(1))
    logger.start()
    depths: list[int] = []
    for n in range(12):
        await logger.record("order", "sequential", details={"n": n})
        depths.append(logger.depth)
    assert waits, "a full queue must report backpressure"
    assert max(depths) <= 2
    # Many callers at once: each waits its turn.
    await asyncio.gather(
        *(logger.record("order", "concurrent", details={"n": n}) for n in range(12))
    )
    await logger.stop()
    rows = stored(slow)
    sequential = [row.details["n"] for row in rows if row.action == "sequential"]
    concurrent = [row.details["n"] for row in rows if row.action == "concurrent"]
    assert sequential == list(range(12))
    assert sorted(concurrent) == list(range(12))
    assert len(rows) == 24
    assert max(slow.batches) <= 2  # a batch never holds more than the queue could
    assert len(waits) >= 9  # at least 1 in the first round, 8 in the second


async def test_failed_writes_are_retried_without_loss_or_duplicates(engine: Engine) -> None:
    flaky = FlakyRepository(engine, failures=2)
    logger = AuditLogger(flaky)
    logger.start()
    for n in range(10):
        await logger.record("auth", "login", user_id=f"u{n}", details={"n": n})
    await logger.stop()
    rows = stored(flaky)
    assert [row.details["n"] for row in rows] == list(range(10))
    assert logger.failures == 2
    assert logger.written == 10
    assert flaky.calls >= 3


async def test_flush_waits_for_queued_entries(repository: AuditRepository) -> None:
    logger = AuditLogger(SlowRepository(repository.engine, delay=0.01))
    logger.start()
    for n in range(5):
        await logger.record("order", "queued", details={"n": n})
    await logger.flush()
    assert len(stored(repository)) == 5
    assert logger.depth == 0
    await logger.stop()


async def test_stop_finishes_when_a_flush_runs_at_the_same_time(engine: Engine) -> None:
    """A query or archive request flushing while the gateway stops must not hang the stop."""
    slow = SlowRepository(engine, delay=0.1)
    logger = AuditLogger(slow)
    logger.start()
    await logger.record("order", "first")
    await asyncio.sleep(0.02)  # the writer is busy with the first entry
    await logger.record("order", "second")
    stopping = asyncio.create_task(logger.stop())
    await asyncio.sleep(0.01)  # stop() has queued its stop sign behind "second"
    await logger.flush()
    done, _ = await asyncio.wait([stopping], timeout=2)
    if not done:
        # Unblock the writer so the test itself ends; the hang is the failure.
        await logger._queue.put(None)
        await asyncio.wait([stopping], timeout=3)
    assert done, "stop() hung after a concurrent flush()"
    assert [row.action for row in stored(slow)] == ["first", "second"]


async def test_a_disabled_logger_records_nothing(repository: AuditRepository) -> None:
    logger = AuditLogger(repository, enabled=False)
    logger.start()
    for n in range(5):
        await logger.record("auth", "login", details={"n": n})
    assert logger.depth == 0
    await logger.flush()
    await logger.stop()
    assert stored(repository) == []
    assert logger.written == 0
