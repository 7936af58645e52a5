"""Audit entries in the database. Synchronous: called from the audit writer's thread."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, delete, func, insert, select

from app.audit.entries import AuditEntry
from app.db.tables import AuditRow

AUDIT: Table = AuditRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    log_type: str | None = None
    user_id: str | None = None
    action: str | None = None
    start: float | None = None
    end: float | None = None


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        timestamp=row.timestamp,
        log_type=row.log_type,
        action=row.action,
        user_id=row.user_id,
        ip_address=row.ip_address,
        details=json.loads(row.details),
        request_id=row.request_id,
    )


class AuditRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(self, entries: Sequence[AuditEntry]) -> None:
        rows = [
            {
                "timestamp": e.timestamp,
                "log_type": e.log_type,
                "action": e.action,
                "user_id": e.user_id,
                "ip_address": e.ip_address,
                "details": json.dumps(e.details, default=str),
                "request_id": e.request_id,
            }
            for e in entries
        ]
        with self.engine.begin() as conn:
            conn.execute(insert(AUDIT), rows)

    def search(self, query: AuditQuery, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
        """Newest first, with the total number of matching entries."""
        conditions = []
        if query.log_type:
            conditions.append(AUDIT.c.log_type == query.log_type)
        if query.user_id:
            conditions.append(AUDIT.c.user_id == query.user_id)
        if query.action:
            conditions.append(AUDIT.c.action == query.action)
        if query.start is not None:
            conditions.append(AUDIT.c.timestamp >= query.start)
        if query.end is not None:
            conditions.append(AUDIT.c.timestamp <= query.end)
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(AUDIT).where(*conditions)
            ).scalar_one()
            rows = conn.execute(
                select(AUDIT)
                .where(*conditions)
                .order_by(AUDIT.c.timestamp.desc(), AUDIT.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_entry(r) for r in rows], int(total)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(AUDIT.c.log_type, func.count()).group_by(AUDIT.c.log_type))
            return {log_type: int(count) for log_type, count in rows}

    def expired(
        self, log_type: str | None, others: Sequence[str], before: float, limit: int
    ) -> list[tuple[int, AuditEntry]]:
        """The oldest entries of a type (or, with None, of any type not in `others`)."""
        condition = AUDIT.c.timestamp < before
        if log_type is None:
            condition = condition & AUDIT.c.log_type.not_in(list(others))
        else:
            condition = condition & (AUDIT.c.log_type == log_type)
        with self.engine.connect() as conn:
            rows = conn.execute(select(AUDIT).where(condition).order_by(AUDIT.c.id).limit(limit))
            return [(int(r.id), _entry(r)) for r in rows]

    def delete(self, ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(AUDIT).where(AUDIT.c.id.in_(list(ids))))
