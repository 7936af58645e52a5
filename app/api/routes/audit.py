"""The audit log: query, statistics, and archive on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.api.context import audit
from app.api.deps import RuntimeDep
from app.api.security import require
from app.auth.permissions import ADMIN_CONFIG
from app.core.errors import ApiError
from app.db.audit import AuditQuery
from app.schemas.audit import (
    ArchiveResponse,
    ArchiveStatsModel,
    AuditEntryModel,
    AuditLogsResponse,
    AuditStatsResponse,
    FileSummary,
    RetentionPolicyModel,
)
from app.schemas.common import error_responses

router = APIRouter(
    tags=["audit"],
    dependencies=[Depends(require(ADMIN_CONFIG))],
    responses=error_responses(401, 403, 429),
)


def _time(value: str | None) -> float | None:
    """ISO 8601 (`Z` accepted) to epoch seconds; unparseable values are ignored (§8.2)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _int(value: str | None, default: int, low: int, high: int | None = None) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        number = default
    number = max(low, number)
    return min(number, high) if high is not None else number


@router.get("/api/audit/logs", summary="Query the audit log", response_model=AuditLogsResponse)
async def query_audit_logs(
    runtime: RuntimeDep,
    type: Annotated[str | None, Query(description="Log type: auth, order, api_key, ...")] = None,
    user_id: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query()] = None,
    start_time: Annotated[
        str | None, Query(description="ISO 8601, e.g. 2026-11-24T00:00:00Z")
    ] = None,
    end_time: Annotated[str | None, Query(description="ISO 8601")] = None,
    limit: Annotated[str | None, Query(description="1 to 1000, default 100")] = None,
    offset: Annotated[str | None, Query(description="default 0")] = None,
) -> AuditLogsResponse:
    """Newest first. Entries still queued for writing are included."""
    size = _int(limit, 100, 1, 1000)
    skip = _int(offset, 0, 0)
    await runtime.audit.flush()
    query = AuditQuery(type or None, user_id or None, action or None, _time(start_time),
                       _time(end_time))  # fmt: skip
    entries, total = await asyncio.to_thread(runtime.retention.repository.search, query, size, skip)
    return AuditLogsResponse(
        logs=[AuditEntryModel.model_validate(e.to_public()) for e in entries],
        total=total,
        limit=size,
        offset=skip,
        has_more=skip + len(entries) < total,
    )


@router.get("/api/audit/stats", summary="Audit log statistics", response_model=AuditStatsResponse)
async def audit_stats(runtime: RuntimeDep) -> AuditStatsResponse:
    """Entries per log type, the retention policies, archive files and the write queue's depth."""
    retention = runtime.retention
    counts = await asyncio.to_thread(retention.repository.counts)
    archives = await asyncio.to_thread(retention.archive_files)
    return AuditStatsResponse(
        policies={
            name: RetentionPolicyModel.model_validate(policy.to_public())
            for name, policy in retention.policies.items()
        },
        entries=counts,
        total_entries=sum(counts.values()),
        archive_files={name: FileSummary.model_validate(v) for name, v in archives.items()},
        archive_size_bytes=sum(v["size_bytes"] for v in archives.values()),
        queue_depth=runtime.audit.depth,
    )


@router.post(
    "/api/audit/archive",
    summary="Archive expired entries now",
    response_model=ArchiveResponse,
    responses=error_responses(500),
)
async def archive_audit_log(request: Request, runtime: RuntimeDep) -> ArchiveResponse:
    """Moves entries past their retention to gzipped NDJSON files, then deletes them."""
    await runtime.audit.flush()
    try:
        stats = await asyncio.to_thread(runtime.retention.run)
    except Exception as exc:
        raise ApiError(500, "archive_failed", str(exc)) from exc
    public = stats.to_public()
    await audit(request, "audit", "trigger_archive", {"stats": public})
    return ArchiveResponse(stats=ArchiveStatsModel.model_validate(public))
