"""The single database writer: batches events and state changes, commits them off the loop.

Requests that acknowledge a write (an accepted order, a cancel) wait for `wait_durable(id)`, so
every acknowledgement is on disk first. Concurrent requests share one commit (group commit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.db.repository import Batch, StateRepository, order_row
from app.events.bus import Event
from app.state import GatewayState

log = logging.getLogger("veloz.db")

PRUNE_EVERY = 2000  # events between two prunes of the events table


class StorageUnavailable(Exception):
    pass


class StateWriter:
    def __init__(
        self,
        repository: StateRepository,
        state: GatewayState,
        on_durable: Callable[[int], None] = lambda _id: None,
    ) -> None:
        self._repository = repository
        self._state = state
        self._on_durable = on_durable  # told the newest committed event id
        self._events: list[Event] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veloz-db")
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._stopping = False
        self._taken = 0  # batches taken for writing
        self._committed = 0  # batches committed
        self._since_prune = 0
        self.durable_id = 0
        self.failures = 0

    def on_event(self, event: Event) -> None:
        """Bus listener: runs after state folding, so the dirty sets include this event."""
        self._events.append(event)
        self._wake.set()

    def notify(self) -> None:
        """State changed without an event (e.g. order parameters noted before submission)."""
        self._wake.set()

    def start(self, durable_id: int) -> None:
        self.durable_id = durable_id
        self._task = asyncio.create_task(self._run(), name="veloz-state-writer")

    async def wait_durable(self, timeout: float = 5.0) -> None:
        """Return once every change made before this call is committed."""
        if self._pending():
            needed = self._taken + 1  # the next batch will carry our changes
            self._wake.set()
        elif self._taken > self._committed:
            needed = self._taken  # our changes are in the batch being written now
        else:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((needed, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError as exc:
            raise StorageUnavailable("the database did not confirm the write in time") from exc

    async def stop(self) -> None:
        """Flush everything still pending, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    def _pending(self) -> bool:
        state = self._state
        return bool(self._events or state.orders.dirty or state.account.dirty or state.market.dirty)

    def _take_batch(self) -> Batch:
        state = self._state
        events, self._events = self._events, []
        balances = None
        account_ts = None
        if state.account.dirty:
            state.account.dirty = False
            balances = [
                {"asset": b.asset, "position": i, "free": str(b.free), "locked": str(b.locked)}
                for i, b in enumerate(state.account.balances())
            ]
            account_ts = state.account.ts_ns
        return Batch(
            events=events,
            orders=[order_row(o) for o in state.orders.take_dirty()],
            balances=balances,
            account_ts_ns=account_ts,
            quotes=[
                {
                    "symbol": q.symbol,
                    "price": None if q.price is None else str(q.price),
                    "ts_ns": q.ts_ns,
                }
                for q in state.market.take_dirty()
            ],
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        retry_delay = 0.05
        batch: Batch | None = None
        while True:
            if batch is None:
                if not self._pending():
                    if self._stopping:
                        return
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                batch = self._take_batch()
                self._taken += 1
            try:
                await loop.run_in_executor(self._executor, self._repository.write, batch)
            except Exception:
                self.failures += 1
                log.exception("database write failed; retrying in %.2fs", retry_delay)
                await asyncio.sleep(retry_delay)
                retry_delay = min(retry_delay * 2, 2.0)
                if self._pending():  # fold newer changes in, so one commit carries both
                    batch = self._merge(batch, self._take_batch())
                    self._taken += 1
                continue
            retry_delay = 0.05
            self._committed = self._taken
            if batch.events:
                self.durable_id = batch.last_event_id
                self._since_prune += len(batch.events)
                self._on_durable(self.durable_id)
            batch = None
            self._release_waiters()
            if self._since_prune >= PRUNE_EVERY:
                self._since_prune = 0
                try:
                    await loop.run_in_executor(
                        self._executor, self._repository.prune_events, self.durable_id
                    )
                except Exception:
                    log.exception("pruning old events failed")

    @staticmethod
    def _merge(first: Batch, second: Batch) -> Batch:
        orders = {row["client_order_id"]: row for row in first.orders}
        orders.update({row["client_order_id"]: row for row in second.orders})
        quotes = {row["symbol"]: row for row in first.quotes}
        quotes.update({row["symbol"]: row for row in second.quotes})
        return Batch(
            events=first.events + second.events,
            orders=list(orders.values()),
            balances=second.balances if second.balances is not None else first.balances,
            account_ts_ns=second.account_ts_ns or first.account_ts_ns,
            quotes=list(quotes.values()),
        )

    def _release_waiters(self) -> None:
        keep = []
        for needed, future in self._waiters:
            if future.done():
                continue
            if needed <= self._committed:
                future.set_result(None)
            else:
                keep.append((needed, future))
        self._waiters = keep
