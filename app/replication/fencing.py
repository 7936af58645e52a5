"""Fencing in the database: each leader takes a new epoch, and every state write checks it.

The lease in Redis says who should lead; the epoch in PostgreSQL makes sure only that one
writes. A new leader raises `leader_epoch` (waiting on the row lock for a write still in flight
from the old one); from then on the old leader's next write finds another epoch, rolls back
and ends the process before it can store anything more.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select, update

from app.db.repository import META, StateRepository

log = logging.getLogger("veloz.replication")

EPOCH_KEY = "leader_epoch"
FENCED_EXIT_STATUS = 70


def take_epoch(engine: Engine) -> int:
    """The next leader epoch, stored (the caller is about to lead)."""
    with engine.begin() as conn:
        current = conn.execute(
            select(META.c.value).where(META.c.key == EPOCH_KEY).with_for_update()
        ).scalar()
        epoch = int(current or 0) + 1
        if current is None:
            conn.execute(META.insert().values(key=EPOCH_KEY, value=str(epoch)))
        else:
            conn.execute(update(META).where(META.c.key == EPOCH_KEY).values(value=str(epoch)))
    return epoch


def exit_fenced(epoch: int) -> None:
    log.critical("leader epoch %d replaced by a newer leader; exiting", epoch)
    logging.shutdown()
    os._exit(FENCED_EXIT_STATUS)  # nothing of the transaction under way is committed


def fence_writes(
    repository: StateRepository, epoch: int, on_fenced: Callable[[int], None] = exit_fenced
) -> None:
    """From now on every state write of `repository` first proves it is still `epoch`'s."""

    def check(conn: Any) -> None:
        still_ours = conn.execute(
            update(META)
            .where(META.c.key == EPOCH_KEY, META.c.value == str(epoch))
            .values(value=str(epoch))
        ).rowcount
        if still_ours != 1:
            on_fenced(epoch)

    repository.before_write = check  # type: ignore[method-assign]
