"""The audit logger: callers enqueue, one task writes batches off the request path.

Nothing is dropped: when the queue is full the caller waits (backpressure), and the wait is
counted and logged; a graceful stop writes everything still queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.audit.entries import AuditEntry
from app.db.audit import AuditRepository

log = logging.getLogger("veloz.audit")

BATCH_SIZE = 500


class AuditLogger:
    def __init__(
        self,
        repository: AuditRepository,
        queue_size: int = 10_000,
        on_backpressure: Callable[[], None] = lambda: None,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._repository = repository
        # None is the stop sign: everything queued before it is written first.
        self._queue: asyncio.Queue[AuditEntry | None] = asyncio.Queue(maxsize=queue_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veloz-audit")
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._on_backpressure = on_backpressure
        self.written = 0
        self.failures = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="veloz-audit-writer")

    async def record(
        self,
        log_type: str,
        action: str,
        *,
        user_id: str | None = None,
        ip_address: str | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        if not self.enabled:
            return
        entry = AuditEntry(
            time.time(), log_type, action, user_id, ip_address, details or {}, request_id
        )
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self._on_backpressure()
            log.warning("audit queue full (%d entries); waiting for the writer", self.depth)
            await self._queue.put(entry)

    async def stop(self) -> None:
        """Write everything queued, then stop."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        await self._drain_all()  # anything recorded while stopping
        self._executor.shutdown(wait=True)

    async def flush(self) -> None:
        """Wait until everything queued so far is written (queries, archive)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()  # the writer marks each entry done once it is stored
        else:
            await self._drain_all()

    def _take(self, first: AuditEntry | None) -> list[AuditEntry | None]:
        items = [first]
        while len(items) < BATCH_SIZE and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def _write_items(self, items: list[AuditEntry | None]) -> None:
        batch = [item for item in items if item is not None]
        try:
            if batch:
                await self._write(batch)
        finally:
            for _ in items:
                self._queue.task_done()

    async def _run(self) -> None:
        while True:
            items = self._take(await self._queue.get())
            await self._write_items(items)
            if None in items:  # the stop sign
                return

    async def _drain_all(self) -> None:
        """Write what is queued when the writer task is not running."""
        while not self._queue.empty():
            await self._write_items(self._take(self._queue.get_nowait()))

    async def _write(self, batch: list[AuditEntry]) -> None:
        async with self._write_lock:
            await self._write_locked(batch)

    async def _write_locked(self, batch: list[AuditEntry]) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.05
        while True:
            try:
                await loop.run_in_executor(self._executor, self._repository.insert, batch)
                self.written += len(batch)
                return
            except Exception:
                # Keep the batch and retry: an audit entry is never silently dropped.
                self.failures += 1
                log.exception("writing %d audit entries failed; retrying", len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
