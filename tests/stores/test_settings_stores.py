"""Run-time configuration overrides and the GUI settings document on both databases."""

from __future__ import annotations

from sqlalchemy import Engine

from app.db.config import ConfigRepository
from app.db.settings import SettingsRepository


def test_config_overrides_are_replaced_as_a_whole(db: Engine) -> None:
    repository = ConfigRepository(db)
    assert repository.load() == {}
    repository.save({"rate_limit_capacity": 5, "cors_origins": ["https://a.example"]})
    repository.save({"log_level": "debug"})

    assert repository.load() == {"log_level": "debug"}


def test_the_settings_document_is_upserted(db: Engine) -> None:
    repository = SettingsRepository(db)
    assert repository.load() is None
    repository.save({"general": {"language": "en"}}, updated_at=1)
    repository.save({"general": {"language": "zh"}, "ui": {"theme": "dark"}}, updated_at=2)

    assert repository.load() == {"general": {"language": "zh"}, "ui": {"theme": "dark"}}
    assert repository.load("someone-else") is None
