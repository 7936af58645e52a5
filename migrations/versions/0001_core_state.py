"""Core state: events, orders, balances, market quotes, meta.

Revision ID: 0001_core_state
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_core_state"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("order_related", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_events_order_related_id", "events", ["order_related", "id"])
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(32)),
        sa.Column("side", sa.String(8)),
        sa.Column("order_type", sa.String(16)),
        sa.Column("time_in_force", sa.String(8)),
        sa.Column("order_qty", sa.String(64)),
        sa.Column("limit_price", sa.String(64)),
        sa.Column("venue_order_id", sa.String(128)),
        sa.Column("status", sa.String(32)),
        sa.Column("reason", sa.String(256)),
        sa.Column("executed_qty", sa.String(64), nullable=False, server_default="0"),
        sa.Column("avg_price", sa.String(64)),
        sa.Column("last_ts_ns", sa.BigInteger()),
        sa.Column("request_fingerprint", sa.String(256)),
    )
    op.create_index("ix_orders_seq", "orders", ["seq"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_table(
        "balances",
        sa.Column("asset", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("free", sa.String(64), nullable=False),
        sa.Column("locked", sa.String(64), nullable=False),
    )
    op.create_table(
        "market_quotes",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("price", sa.String(64)),
        sa.Column("ts_ns", sa.BigInteger()),
    )
    op.create_table(
        "gateway_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_meta")
    op.drop_table("market_quotes")
    op.drop_table("balances")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_index("ix_orders_seq", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_events_order_related_id", table_name="events")
    op.drop_table("events")
