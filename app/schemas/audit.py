"""Audit log shapes (contract §8.2)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryModel(BaseModel):
    timestamp: float = Field(description="Epoch seconds.")
    datetime: str = Field(description="ISO 8601, UTC.")
    log_type: str
    action: str
    user_id: str | None
    ip_address: str | None
    details: dict[str, Any]
    request_id: str | None


class AuditLogsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "logs": [
                        {"timestamp": 1795490829.31, "datetime": "2026-11-24T03:27:09.310000+00:00",
                         "log_type": "order", "action": "place_order", "user_id": "alice",
                         "ip_address": "127.0.0.1",
                         "details": {"client_order_id": "c1", "ok": True},
                         "request_id": "9f2c..."}
                    ],
                    "total": 1, "limit": 100, "offset": 0, "has_more": False,
                }
            ]
        }
    )  # fmt: skip

    logs: list[AuditEntryModel]
    total: int
    limit: int
    offset: int
    has_more: bool


class RetentionPolicyModel(BaseModel):
    retention_days: int
    archive_before_delete: bool
    max_file_size_mb: int


class FileSummary(BaseModel):
    count: int
    size_bytes: int


class AuditStatsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "active",
                    "policies": {
                        "auth": {
                            "retention_days": 90,
                            "archive_before_delete": True,
                            "max_file_size_mb": 100,
                        }
                    },
                    "entries": {"auth": 12, "order": 40},
                    "total_entries": 52,
                    "archive_files": {"auth": {"count": 1, "size_bytes": 2048}},
                    "archive_size_bytes": 2048,
                    "queue_depth": 0,
                }
            ]
        }
    )

    status: str = "active"
    policies: dict[str, RetentionPolicyModel]
    entries: dict[str, int] = Field(description="Entries in the log, per log type.")
    total_entries: int
    archive_files: dict[str, FileSummary]
    archive_size_bytes: int
    queue_depth: int = Field(description="Entries waiting to be written.")


class ArchiveStatsModel(BaseModel):
    archived_files: int
    deleted_files: int
    bytes_freed: int
    errors: list[str]
    archived_entries: int
    deleted_entries: int


class ArchiveResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "stats": {
                        "archived_files": 1,
                        "deleted_files": 0,
                        "bytes_freed": 0,
                        "errors": [],
                        "archived_entries": 120,
                        "deleted_entries": 120,
                    },
                }
            ]
        }
    )

    ok: bool = True
    stats: ArchiveStatsModel
