"""Leader epochs: a state write of a replaced leader is refused and nothing of it is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.db.repository import Batch, StateRepository
from app.events.bus import Event
from app.replication.fencing import fence_writes, take_epoch


class Fenced(Exception):
    pass


def _refuse(epoch: int) -> None:
    raise Fenced(epoch)


def _batch(event_id: int) -> Batch:
    return Batch([Event.build(event_id, {"type": "market"})], [], None, None, [])


def test_a_newer_epoch_fences_the_older_leader(db: Engine) -> None:
    old, new = StateRepository(db, 1000), StateRepository(db, 1000)
    first = take_epoch(db)
    fence_writes(old, first, on_fenced=_refuse)
    old.write(_batch(1))

    second = take_epoch(db)
    fence_writes(new, second, on_fenced=_refuse)

    with pytest.raises(Fenced):
        old.write(_batch(2))
    new.write(_batch(2))
    assert (first, second) == (1, 2)
    assert [e.id for e in new.load(ring_size=10).recent_events] == [1, 2]
