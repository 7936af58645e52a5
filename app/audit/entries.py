"""Audit entries and retention policies (contract §8.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditEntry:
    timestamp: float
    log_type: str
    action: str
    user_id: str | None
    ip_address: str | None
    details: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def to_public(self) -> dict[str, Any]:
        """The contract's fields, in order; `datetime` is local ISO 8601 without a zone (§8.2);
        `timestamp` is the exact instant."""
        return {
            "timestamp": self.timestamp,
            "datetime": datetime.fromtimestamp(self.timestamp).isoformat(),
            "log_type": self.log_type,
            "action": self.action,
            "user_id": self.user_id,
            "ip_address": self.ip_address,
            "details": self.details,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention_days: int
    archive_before_delete: bool
    max_file_size_mb: int = 100

    def to_public(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "archive_before_delete": self.archive_before_delete,
            "max_file_size_mb": self.max_file_size_mb,
        }


DEFAULT_POLICY_KEY = "default"
DEFAULT_POLICIES: dict[str, RetentionPolicy] = {
    "auth": RetentionPolicy(90, True),
    "order": RetentionPolicy(365, True),
    "api_key": RetentionPolicy(365, True),
    "error": RetentionPolicy(30, True),
    "access": RetentionPolicy(14, False),
    DEFAULT_POLICY_KEY: RetentionPolicy(30, True),
}


def policy_for(policies: dict[str, RetentionPolicy], log_type: str) -> RetentionPolicy:
    return policies.get(log_type) or policies[DEFAULT_POLICY_KEY]
