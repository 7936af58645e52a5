"""Every store test runs twice: on SQLite and on a real PostgreSQL server (tests/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from app.db.database import make_engine, migrate


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """A migrated, empty database of the parametrized kind."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()
