"""RetentionManager against a real SQLite audit table: per-type policies and the `default`
policy, delete-only types, batches, appending to a day's archive, old archives removed, and
errors reported in the statistics instead of raised."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.audit.entries import DEFAULT_POLICIES, AuditEntry, RetentionPolicy
from app.audit.retention import BATCH, DAY, ArchiveStats, RetentionManager, read_archive
from app.db.audit import AuditQuery, AuditRepository
from app.db.database import make_engine, migrate

# 2027-01-15T12:00:00Z: "now" for every run, so dates are fixed.
NOW = 1_800_000_000.0 - (1_800_000_000 % 86_400) + 12 * 3600


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(db)
    yield db
    db.dispose()


@pytest.fixture
def repository(engine: Engine) -> AuditRepository:
    return AuditRepository(engine)


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "archive"


def manager(
    repository: AuditRepository,
    archive_dir: Path,
    policies: dict[str, RetentionPolicy] | None = None,
) -> RetentionManager:
    return RetentionManager(repository, archive_dir, dict(policies or DEFAULT_POLICIES))


def entry(days_old: float, log_type: str, n: int = 0, action: str = "act") -> AuditEntry:
    return AuditEntry(
        timestamp=NOW - days_old * DAY,
        log_type=log_type,
        action=action,
        user_id=f"user-{n}",
        ip_address="10.0.0.1",
        details={"n": n, "nested": {"list": [1, "two"]}},
        request_id=f"{log_type}-{n}",
    )


def remaining(repository: AuditRepository) -> list[AuditEntry]:
    """Every entry still in the table, oldest first."""
    entries, total = repository.search(AuditQuery(), 100_000, 0)
    assert len(entries) == total
    return entries[::-1]


def day_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def archive_name(log_type: str, days_old: float) -> str:
    return f"{log_type}_{day_of(NOW - days_old * DAY)}.ndjson.gz"


def files(archive_dir: Path) -> list[str]:
    return sorted(path.name for path in archive_dir.iterdir())


def as_stats(stats: ArchiveStats) -> dict[str, object]:
    public = stats.to_public()
    assert list(public) == [
        "archived_files",
        "deleted_files",
        "bytes_freed",
        "errors",
        "archived_entries",
        "deleted_entries",
    ]
    return public


def write_archive(path: Path, lines: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for n in range(lines):
            handle.write(json.dumps({"n": n}) + "\n")
    return path.stat().st_size


# --- policies ---------------------------------------------------------------------------------


def test_each_type_expires_after_its_own_retention(
    repository: AuditRepository, archive_dir: Path
) -> None:
    retention = {"auth": 90, "order": 365, "api_key": 365, "error": 30, "access": 14}
    expired = [entry(days + 1, log_type, 1) for log_type, days in retention.items()]
    kept = [entry(days - 1, log_type, 2) for log_type, days in retention.items()]
    repository.insert([*expired, *kept])

    stats = manager(repository, archive_dir).run(now=NOW)

    assert as_stats(stats) == {
        "archived_files": 4,
        "deleted_files": 0,
        "bytes_freed": 0,
        "errors": [],
        "archived_entries": 4,
        "deleted_entries": 5,
    }
    assert remaining(repository) == sorted(kept, key=lambda e: e.timestamp)
    archived = {t: d + 1 for t, d in retention.items() if t != "access"}
    assert files(archive_dir) == sorted(archive_name(t, days) for t, days in archived.items())
    for old in expired:
        if old.log_type == "access":
            continue
        days = retention[old.log_type] + 1
        assert read_archive(archive_dir / archive_name(old.log_type, days)) == [old.to_public()]


def test_unknown_types_follow_the_default_policy(
    repository: AuditRepository, archive_dir: Path
) -> None:
    policies = {
        "auth": RetentionPolicy(90, True),
        "access": RetentionPolicy(14, False),
        "default": RetentionPolicy(5, True),
    }
    custom_old, audit_old = entry(6, "custom", 1), entry(6, "audit", 2)
    custom_new = entry(4, "custom", 3)
    auth_six_days = entry(6, "auth", 4)
    repository.insert([custom_old, audit_old, custom_new, auth_six_days])

    stats = manager(repository, archive_dir, policies).run(now=NOW)

    assert (stats.archived_entries, stats.deleted_entries, stats.archived_files) == (2, 2, 2)
    assert stats.errors == []
    assert remaining(repository) == [auth_six_days, custom_new]
    assert files(archive_dir) == [archive_name("audit", 6), archive_name("custom", 6)]
    assert read_archive(archive_dir / archive_name("custom", 6)) == [custom_old.to_public()]
    assert read_archive(archive_dir / archive_name("audit", 6)) == [audit_old.to_public()]

    # With the stock policies the same types keep 30 days.
    repository.insert([entry(29, "custom", 5), entry(31, "custom", 6)])
    again = manager(repository, archive_dir).run(now=NOW)
    assert (again.archived_entries, again.deleted_entries) == (1, 1)
    assert [e.details["n"] for e in remaining(repository)] == [5, 4, 3]


def test_types_without_archiving_are_deleted_without_a_file(
    repository: AuditRepository, archive_dir: Path
) -> None:
    policies = {
        "access": RetentionPolicy(14, False),
        "error": RetentionPolicy(3, False),
        "default": RetentionPolicy(30, True),
    }
    repository.insert([entry(15 + n, "access", n) for n in range(5)] + [entry(4, "error", 9)])
    repository.insert([entry(13, "access", 7)])

    stats = manager(repository, archive_dir, policies).run(now=NOW)

    assert as_stats(stats) == {
        "archived_files": 0,
        "deleted_files": 0,
        "bytes_freed": 0,
        "errors": [],
        "archived_entries": 0,
        "deleted_entries": 6,
    }
    assert [e.request_id for e in remaining(repository)] == ["access-7"]
    assert files(archive_dir) == []


# --- batches and appending --------------------------------------------------------------------


def test_more_than_one_batch_is_all_archived_in_order(
    repository: AuditRepository, archive_dir: Path
) -> None:
    count = 2 * BATCH + 500
    # Spread over two days, 100 and 101 days old; inserted in time order.
    old = [entry(101 - n / count, "auth", n) for n in range(count)]
    repository.insert(old)
    repository.insert([entry(1, "auth", count)])

    stats = manager(repository, archive_dir).run(now=NOW)

    days = sorted({day_of(e.timestamp) for e in old})
    assert len(days) == 2
    assert (stats.archived_entries, stats.deleted_entries) == (count, count)
    assert stats.archived_files == 2  # files, not batch writes
    assert stats.errors == []
    assert [e.details["n"] for e in remaining(repository)] == [count]
    assert files(archive_dir) == [f"auth_{day}.ndjson.gz" for day in days]
    archived = [
        item for day in days for item in read_archive(archive_dir / f"auth_{day}.ndjson.gz")
    ]
    assert archived == [e.to_public() for e in old]


def test_a_second_run_appends_to_the_same_days_archive(
    repository: AuditRepository, archive_dir: Path
) -> None:
    first = [entry(100 + n / 100_000, "auth", n) for n in range(3)]
    repository.insert(first)
    one = manager(repository, archive_dir).run(now=NOW)
    assert (one.archived_files, one.archived_entries) == (1, 3)
    path = archive_dir / archive_name("auth", 100)
    assert read_archive(path) == [e.to_public() for e in first]
    size = path.stat().st_size

    second = [entry(100 - n / 100_000, "auth", 10 + n) for n in range(2)]
    repository.insert(second)
    two = manager(repository, archive_dir).run(now=NOW)
    assert (two.archived_files, two.archived_entries, two.deleted_entries) == (1, 2, 2)
    assert files(archive_dir) == [path.name]
    assert path.stat().st_size > size
    assert read_archive(path) == [e.to_public() for e in [*first, *second]]
    # Any gzip reader sees one NDJSON stream.
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [
        "auth-0",
        "auth-1",
        "auth-2",
        "auth-10",
        "auth-11",
    ]
    assert remaining(repository) == []


# --- old archives -----------------------------------------------------------------------------


def test_archives_older_than_twice_the_retention_are_deleted(
    repository: AuditRepository, archive_dir: Path
) -> None:
    doomed = {
        archive_name("auth", 200): 5,  # 2 x 90 = 180
        archive_name("access", 40): 3,  # 2 x 14 = 28
        archive_name("api_key", 800): 2,  # 2 x 365 = 730; a type with "_"
        archive_name("custom", 70): 4,  # default: 2 x 30 = 60
    }
    kept = {
        archive_name("auth", 170): 1,
        archive_name("access", 20): 1,
        archive_name("api_key", 700): 1,
        archive_name("custom", 50): 1,
        "notes.ndjson.gz": 1,  # not an archive name: left alone
    }
    freed = sum(write_archive(archive_dir / name, lines) for name, lines in doomed.items())
    for name, lines in kept.items():
        write_archive(archive_dir / name, lines)

    stats = manager(repository, archive_dir).run(now=NOW)

    assert as_stats(stats) == {
        "archived_files": 0,
        "deleted_files": 4,
        "bytes_freed": freed,
        "errors": [],
        "archived_entries": 0,
        "deleted_entries": 0,
    }
    assert files(archive_dir) == sorted(kept)


def test_an_archive_written_and_already_too_old_is_deleted_in_the_same_run(
    repository: AuditRepository, archive_dir: Path
) -> None:
    repository.insert([entry(200, "auth", 1)])
    stats = manager(repository, archive_dir).run(now=NOW)
    assert (stats.archived_entries, stats.deleted_entries, stats.archived_files) == (1, 1, 1)
    assert stats.deleted_files == 1
    assert stats.bytes_freed > 0
    assert files(archive_dir) == []


def test_archive_summary_counts_files_per_type(
    repository: AuditRepository, archive_dir: Path
) -> None:
    retention = manager(repository, archive_dir)
    assert retention.archive_files() == {}
    sizes = [
        write_archive(archive_dir / archive_name("api_key", 1), 2),
        write_archive(archive_dir / archive_name("api_key", 2), 3),
        write_archive(archive_dir / archive_name("auth", 1), 4),
    ]
    assert retention.archive_files() == {
        "api_key": {"count": 2, "size_bytes": sizes[0] + sizes[1]},
        "auth": {"count": 1, "size_bytes": sizes[2]},
    }


# --- errors -----------------------------------------------------------------------------------


def test_a_failing_archive_write_is_reported_and_keeps_the_entries(
    repository: AuditRepository, archive_dir: Path
) -> None:
    blocked = entry(100, "auth", 1)
    order = entry(400, "order", 2)
    access = entry(20, "access", 3)
    repository.insert([blocked, order, access])
    # A directory where the auth archive file should go: writing it fails.
    (archive_dir / archive_name("auth", 100)).mkdir(parents=True)

    stats = manager(repository, archive_dir).run(now=NOW)

    assert len(stats.errors) == 1
    assert stats.errors[0].startswith("auth: ")
    assert remaining(repository) == [blocked]  # not deleted, since not archived
    # Other types went on.
    assert (stats.archived_entries, stats.deleted_entries, stats.archived_files) == (1, 2, 1)
    assert read_archive(archive_dir / archive_name("order", 400)) == [order.to_public()]


def test_an_unusable_archive_directory_is_reported_not_raised(
    repository: AuditRepository, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "archive"
    not_a_dir.write_text("a file where the archive directory should be")
    old = entry(100, "auth", 1)
    repository.insert([old])

    stats = manager(repository, not_a_dir).run(now=NOW)

    assert stats.errors, "the failure must show in the statistics"
    assert stats.archived_entries == 0
    assert remaining(repository) == [old]
    assert not_a_dir.read_text() == "a file where the archive directory should be"


# --- file size cap ----------------------------------------------------------------------------


def fill_to(path: Path, size: int) -> None:
    """A valid gzip archive of at least `size` bytes (random text does not compress)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        while path.stat().st_size < size:
            handle.write(json.dumps({"pad": os.urandom(4096).hex()}) + "\n")
            handle.flush()


def test_a_full_archive_is_continued_in_numbered_parts(
    repository: AuditRepository, archive_dir: Path
) -> None:
    capped = {**DEFAULT_POLICIES, "auth": RetentionPolicy(90, True, max_file_size_mb=1)}
    base = archive_dir / archive_name("auth", 100)
    fill_to(base, 1024 * 1024)
    full_size = base.stat().st_size

    first = [entry(100, "auth", 1)]
    repository.insert(first)
    stats = manager(repository, archive_dir, capped).run(now=NOW)
    part1 = archive_dir / archive_name("auth", 100).replace(".ndjson", ".1.ndjson")
    assert stats.archived_files == 1
    assert base.stat().st_size == full_size  # the full file is left alone
    assert read_archive(part1) == [e.to_public() for e in first]

    # A part with room takes the next run's entries; once full, the day goes on in the next.
    second = [entry(100, "auth", 2)]
    repository.insert(second)
    manager(repository, archive_dir, capped).run(now=NOW)
    assert read_archive(part1) == [e.to_public() for e in [*first, *second]]
    fill_to(part1, 1024 * 1024)
    third = [entry(100, "auth", 3)]
    repository.insert(third)
    manager(repository, archive_dir, capped).run(now=NOW)
    part2 = archive_dir / archive_name("auth", 100).replace(".ndjson", ".2.ndjson")
    assert read_archive(part2) == [e.to_public() for e in third]
    assert files(archive_dir) == sorted([base.name, part1.name, part2.name])
    assert manager(repository, archive_dir, capped).archive_files()["auth"]["count"] == 3


def test_old_numbered_parts_are_deleted_with_their_day(
    repository: AuditRepository, archive_dir: Path
) -> None:
    old = archive_dir / archive_name("error", 61).replace(".ndjson", ".3.ndjson")
    size = write_archive(old, 5)
    stats = manager(repository, archive_dir).run(now=NOW)
    assert (stats.deleted_files, stats.bytes_freed) == (1, size)
    assert not old.exists()
