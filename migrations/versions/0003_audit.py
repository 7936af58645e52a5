"""Audit log.

Revision ID: 0003_audit
Revises: 0002_identity
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_audit"
down_revision: str | None = "0002_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("log_type", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("ip_address", sa.String(64)),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(128)),
    )
    op.create_index("ix_audit_logs_timestamp", "audit_logs", ["timestamp"])
    op.create_index("ix_audit_logs_action", "audit_logs", ["action"])
    op.create_index("ix_audit_logs_type_time", "audit_logs", ["log_type", "timestamp"])
    op.create_index("ix_audit_logs_user_time", "audit_logs", ["user_id", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_audit_logs_user_time", table_name="audit_logs")
    op.drop_index("ix_audit_logs_type_time", table_name="audit_logs")
    op.drop_index("ix_audit_logs_action", table_name="audit_logs")
    op.drop_index("ix_audit_logs_timestamp", table_name="audit_logs")
    op.drop_table("audit_logs")
