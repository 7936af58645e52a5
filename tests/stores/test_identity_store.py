"""Users, role assignments, API keys and token revocations on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from app.auth.records import ApiKey, RoleAssignment, User
from app.db.identity import IdentityRepository

NOW = 1_795_490_821


def test_identity_records_round_trip(db: Engine) -> None:
    repository = IdentityRepository(db)
    alice = User("alice", "$argon2id$hash", False, NOW, NOW, None)
    repository.save_user(alice)
    repository.save_user(User("alice", "$argon2id$other", True, NOW, NOW + 5, NOW + 1))
    repository.save_roles(RoleAssignment("alice", ["trader", "viewer"], NOW, NOW, "admin"))
    key = ApiKey("vk_1", "h" * 64, "alice", "bot", ["read", "write"], NOW, None, NOW + 60, False)
    repository.save_key(key)
    repository.save_key(ApiKey("vk_0", "g" * 64, "bob", "old", ["read"], NOW - 1))
    repository.touch_keys({"vk_1": NOW + 9})

    users, roles, keys, revoked = repository.load(NOW)

    assert users == [User("alice", "$argon2id$other", True, NOW, NOW + 5, NOW + 1)]
    assert roles == [RoleAssignment("alice", ["trader", "viewer"], NOW, NOW, "admin")]
    assert [k.key_id for k in keys] == ["vk_0", "vk_1"]  # by creation time
    assert keys[1] == ApiKey(
        "vk_1", "h" * 64, "alice", "bot", ["read", "write"], NOW, NOW + 9, NOW + 60, False
    )
    assert revoked == {}


def test_a_key_hash_is_unique(db: Engine) -> None:
    repository = IdentityRepository(db)
    repository.save_key(ApiKey("vk_1", "h" * 64, "alice", "a", [], NOW))
    with pytest.raises(IntegrityError):
        repository.save_key(ApiKey("vk_2", "h" * 64, "alice", "b", [], NOW))


def test_revocations_are_idempotent_and_expired_ones_are_dropped_at_load(db: Engine) -> None:
    repository = IdentityRepository(db)
    repository.revoke({"jti-1": NOW + 100, "fam:abc": NOW - 1})
    repository.revoke({"jti-1": NOW + 100})  # revoking twice is not an error

    _users, _roles, _keys, revoked = repository.load(NOW)

    assert revoked == {"jti-1": NOW + 100}
    assert repository.load(NOW)[3] == {"jti-1": NOW + 100}
