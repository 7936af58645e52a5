"""Exchange API keys, their key and secret encrypted (contract §4.14).

Revision ID: 0006_exchange_keys
Revises: 0005_config_overrides
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_exchange_keys"
down_revision: str | None = "0005_config_overrides"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("api_key_sealed", sa.Text(), nullable=False),
        sa.Column("api_secret_sealed", sa.Text(), nullable=False),
        sa.Column("passphrase_sealed", sa.Text(), nullable=True),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_used", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("testnet", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exchange_keys")
