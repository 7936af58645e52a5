"""SQLModel tables for the gateway's durable state. Decimals are stored as text, exactly."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, Text
from sqlmodel import Field, SQLModel


class EventRow(SQLModel, table=True):
    """Recent engine events: the SSE replay ring and the /api/orders history survive restarts."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_order_related_id", "order_related", "id"),)

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    type: str = Field(max_length=64)
    order_related: bool = Field(default=False)
    payload: str = Field(sa_column=Column(Text, nullable=False))


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"

    client_order_id: str = Field(primary_key=True, max_length=128)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    symbol: str | None = Field(default=None, max_length=32)
    side: str | None = Field(default=None, max_length=8)
    order_type: str | None = Field(default=None, max_length=16)
    time_in_force: str | None = Field(default=None, max_length=8)
    order_qty: str | None = Field(default=None, max_length=64)
    limit_price: str | None = Field(default=None, max_length=64)
    venue_order_id: str | None = Field(default=None, max_length=128)
    status: str | None = Field(default=None, max_length=32, index=True)
    reason: str | None = Field(default=None, max_length=256)
    executed_qty: str = Field(default="0", max_length=64)
    avg_price: str | None = Field(default=None, max_length=64)
    last_ts_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    request_fingerprint: str | None = Field(default=None, max_length=256)


class BalanceRow(SQLModel, table=True):
    __tablename__ = "balances"

    asset: str = Field(primary_key=True, max_length=32)
    position: int = Field(default=0)
    free: str = Field(max_length=64)
    locked: str = Field(max_length=64)


class MarketRow(SQLModel, table=True):
    __tablename__ = "market_quotes"

    symbol: str = Field(primary_key=True, max_length=32)
    price: str | None = Field(default=None, max_length=64)
    ts_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class MetaRow(SQLModel, table=True):
    """Small key/value facts: the last event id, the account's ts_ns."""

    __tablename__ = "gateway_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)


class UserRow(SQLModel, table=True):
    """Login accounts. Roles live in `role_assignments`, shared with API-key owners."""

    __tablename__ = "users"

    user_id: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=255)
    disabled: bool = Field(default=False)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_login_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class RoleAssignmentRow(SQLModel, table=True):
    __tablename__ = "role_assignments"

    user_id: str = Field(primary_key=True, max_length=64)
    roles: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_by: str | None = Field(default=None, max_length=64)


class ApiKeyRow(SQLModel, table=True):
    """API keys, stored as HMAC-SHA256 of the raw key under a server secret."""

    __tablename__ = "api_keys"

    key_id: str = Field(primary_key=True, max_length=32)
    key_hash: str = Field(max_length=64, unique=True)
    user_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=255)
    permissions: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_used_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    expires_at: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    revoked: bool = Field(default=False)


class RevocationRow(SQLModel, table=True):
    """Revoked token ids (or refresh families, `fam:<id>`), kept until the token expires."""

    __tablename__ = "token_revocations"

    token_id: str = Field(primary_key=True, max_length=80)
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class AuditRow(SQLModel, table=True):
    """One audit entry (contract §8.2 fields)."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_type_time", "log_type", "timestamp"),
        Index("ix_audit_logs_user_time", "user_id", "timestamp"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    timestamp: float = Field(index=True)
    log_type: str = Field(max_length=32)
    action: str = Field(max_length=64, index=True)
    user_id: str | None = Field(default=None, max_length=64)
    ip_address: str | None = Field(default=None, max_length=64)
    details: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    request_id: str | None = Field(default=None, max_length=128)


class ConfigOverrideRow(SQLModel, table=True):
    """Settings changed at run time (POST /api/config), applied over environment and file."""

    __tablename__ = "config_overrides"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))  # JSON
