"""The Alembic migrations run forwards, backwards and forwards again on both databases."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from app.db.database import MIGRATIONS_DIR, migrate

TABLES = {
    "events", "orders", "balances", "market_quotes", "gateway_meta", "users",
    "role_assignments", "api_keys", "token_revocations", "audit_logs", "gui_settings",
    "config_overrides", "exchange_keys",
}  # fmt: skip


def _alembic(db: Engine, action: str, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


def test_downgrade_to_base_and_upgrade_again(db: Engine) -> None:
    assert set(inspect(db).get_table_names()) >= TABLES

    _alembic(db, "downgrade", "base")
    assert set(inspect(db).get_table_names()) <= {"alembic_version"}

    migrate(db)
    migrate(db)  # a second start finds nothing to do
    assert set(inspect(db).get_table_names()) >= TABLES
