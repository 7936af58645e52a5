"""Retention: expired audit entries go to gzipped NDJSON archives, then leave the table.

Files are `<data dir>/audit/archive/<type>_<YYYY-MM-DD>.ndjson.gz`, one per type and day of the
entries; a later run for the same day appends a gzip member, which readers see as one stream.
A file that has reached its type's `max_file_size_mb` is closed: the day continues in
`<type>_<YYYY-MM-DD>.1.ndjson.gz`, `.2`, ... so no archive grows without bound. Archives older
than twice their type's retention are deleted. Work goes in batches, so other writers are never
blocked for long.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.audit.entries import DEFAULT_POLICY_KEY, AuditEntry, RetentionPolicy, policy_for
from app.db.audit import AuditRepository

log = logging.getLogger("veloz.audit")

BATCH = 1000
DAY = 86_400.0
_ARCHIVE_NAME = re.compile(
    r"^(?P<type>.+)_(?P<date>\d{4}-\d{2}-\d{2})(?:\.(?P<part>\d+))?\.ndjson\.gz$"
)
MIB = 1024 * 1024


@dataclass
class ArchiveStats:
    archived_files: int = 0
    deleted_files: int = 0
    bytes_freed: int = 0
    errors: list[str] = field(default_factory=list)
    archived_entries: int = 0
    deleted_entries: int = 0

    def to_public(self) -> dict[str, object]:
        return {
            "archived_files": self.archived_files,
            "deleted_files": self.deleted_files,
            "bytes_freed": self.bytes_freed,
            "errors": self.errors,
            "archived_entries": self.archived_entries,
            "deleted_entries": self.deleted_entries,
        }


class RetentionManager:
    def __init__(
        self, repository: AuditRepository, archive_dir: Path, policies: dict[str, RetentionPolicy]
    ) -> None:
        self.repository = repository
        self.archive_dir = archive_dir
        self.policies = policies

    def run(self, now: float | None = None) -> ArchiveStats:
        """Archive and delete what has expired. Synchronous; run it in a thread."""
        moment = time.time() if now is None else now
        stats = ArchiveStats()
        try:
            self.archive_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # entries are only deleted once archived, so nothing is lost
            stats.errors.append(f"archive directory: {exc}")
        named = [t for t in self.policies if t != DEFAULT_POLICY_KEY]
        for log_type in [*named, None]:
            policy = self.policies[log_type or DEFAULT_POLICY_KEY]
            try:
                self._expire(log_type, named, policy, moment, stats)
            except Exception as exc:
                log.exception("audit retention failed for %s", log_type or "other types")
                stats.errors.append(f"{log_type or DEFAULT_POLICY_KEY}: {exc}")
        self._delete_old_archives(moment, stats)
        return stats

    def _expire(
        self,
        log_type: str | None,
        named: list[str],
        policy: RetentionPolicy,
        now: float,
        stats: ArchiveStats,
    ) -> None:
        before = now - policy.retention_days * DAY
        written: set[Path] = set()
        while True:
            batch = self.repository.expired(log_type, named, before, BATCH)
            if not batch:
                break
            if policy.archive_before_delete:
                written |= self._append((entry for _, entry in batch), policy)
                stats.archived_entries += len(batch)
            # Deleted only once the archive holds them.
            self.repository.delete([entry_id for entry_id, _ in batch])
            stats.deleted_entries += len(batch)
        stats.archived_files += len(written)

    def _append(self, entries: Iterable[AuditEntry], policy: RetentionPolicy) -> set[Path]:
        groups: dict[tuple[str, str], list[AuditEntry]] = defaultdict(list)
        for entry in entries:
            day = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d")
            groups[(entry.log_type, day)].append(entry)
        written: set[Path] = set()
        for (log_type, day), group in groups.items():
            path = self._open_part(log_type, day, policy.max_file_size_mb * MIB)
            lines = "".join(json.dumps(e.to_public(), default=str) + "\n" for e in group)
            with gzip.open(path, "at", encoding="utf-8") as handle:
                handle.write(lines)
            written.add(path)
        return written

    def _open_part(self, log_type: str, day: str, max_bytes: int) -> Path:
        """The day's newest archive part, or the next one once that part is full."""
        part = 0
        while True:
            suffix = f".{part}" if part else ""
            path = self.archive_dir / f"{log_type}_{day}{suffix}.ndjson.gz"
            following = self.archive_dir / f"{log_type}_{day}.{part + 1}.ndjson.gz"
            if following.exists():
                part += 1
                continue
            if path.exists() and max_bytes > 0 and path.stat().st_size >= max_bytes:
                return following
            return path

    def _delete_old_archives(self, now: float, stats: ArchiveStats) -> None:
        for path in sorted(self.archive_dir.glob("*.ndjson.gz")):
            match = _ARCHIVE_NAME.match(path.name)
            if match is None:
                continue
            day = datetime.strptime(match["date"], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            policy = policy_for(self.policies, match["type"])
            if day + DAY < now - 2 * policy.retention_days * DAY:
                try:
                    size = path.stat().st_size
                    path.unlink()
                except OSError as exc:
                    stats.errors.append(f"{path.name}: {exc}")
                    continue
                stats.deleted_files += 1
                stats.bytes_freed += size

    def archive_files(self) -> dict[str, dict[str, int]]:
        """Archive files per log type: count and size."""
        summary: dict[str, dict[str, int]] = {}
        if not self.archive_dir.exists():
            return summary
        for path in self.archive_dir.glob("*.ndjson.gz"):
            match = _ARCHIVE_NAME.match(path.name)
            key = match["type"] if match else "other"
            item = summary.setdefault(key, {"count": 0, "size_bytes": 0})
            item["count"] += 1
            item["size_bytes"] += path.stat().st_size
        return summary


def read_archive(path: Path) -> list[dict[str, object]]:
    """Every entry of an archive file (all gzip members)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
