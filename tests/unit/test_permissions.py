"""Permission expansion (contract §2.5, K7): roles, legacy names, literal names; Principal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.auth.permissions import (
    ALL_PERMISSIONS,
    ANONYMOUS,
    DEFAULT_ROLES,
    VALID_ROLES,
    Principal,
    expand,
)

# The contract's sets, spelled out (not derived from the module under test).
NINE = frozenset(
    {
        "read:market",
        "read:orders",
        "read:account",
        "read:config",
        "write:orders",
        "write:cancel",
        "admin:keys",
        "admin:users",
        "admin:config",
    }
)
VIEWER = frozenset({"read:market", "read:config"})
TRADER = frozenset(
    {"read:market", "read:orders", "read:account", "read:config", "write:orders", "write:cancel"}
)
READ = frozenset({"read:market", "read:orders", "read:account", "read:config"})
WRITE = frozenset({"write:orders", "write:cancel"})
ADMIN_GRANULAR = frozenset({"admin:keys", "admin:users", "admin:config"})


def test_the_nine_permissions() -> None:
    assert len(ALL_PERMISSIONS) == 9
    assert frozenset(ALL_PERMISSIONS) == NINE


def test_roles() -> None:
    assert VALID_ROLES == ["viewer", "trader", "admin"]
    assert DEFAULT_ROLES == ["viewer"]


@pytest.mark.parametrize(
    ("names", "expanded"),
    [
        (["viewer"], VIEWER),
        (["trader"], TRADER),
        (["admin"], NINE),  # the role, matched before the legacy name: all nine
        (["read"], READ),
        (["write"], WRITE),
        (["read", "write"], READ | WRITE),  # the default of an API key
        (["viewer", "write"], VIEWER | WRITE),
        (["read:market"], frozenset({"read:market"})),
        (["admin:keys"], frozenset({"admin:keys"})),
        (["admin:keys", "admin:users", "admin:config"], ADMIN_GRANULAR),
        (["custom:thing"], frozenset({"custom:thing"})),  # unknown names stay literal
        (["Admin"], frozenset({"Admin"})),  # names are case-sensitive
        (["read:*"], frozenset({"read:*"})),  # no wildcards
        ([], frozenset()),
        (["viewer", "viewer", "read:market"], VIEWER),
    ],
)
def test_expand(names: list[str], expanded: frozenset[str]) -> None:
    assert expand(names) == expanded


def test_admin_is_more_than_the_legacy_admin() -> None:
    # The legacy meaning of `admin` would give only the three admin:* permissions.
    assert expand(["admin"]) - ADMIN_GRANULAR == TRADER


NAMES = st.one_of(
    st.sampled_from(["viewer", "trader", "admin", "read", "write", *sorted(NINE)]),
    st.text(min_size=1, max_size=12),
)


@given(st.lists(NAMES, max_size=6), st.lists(NAMES, max_size=6))
def test_expansion_is_per_name(first: list[str], second: list[str]) -> None:
    assert expand(first + second) == expand(first) | expand(second)
    assert expand(second + first) == expand(first + second)


@given(st.lists(NAMES, max_size=6))
def test_expanding_twice_changes_nothing(names: list[str]) -> None:
    once = expand(names)
    known = {"viewer", "trader", "admin", "read", "write"}
    # Roles and legacy names never survive expansion; everything else expands to itself.
    assert not once & known
    assert expand(once) == once


def test_principal_allows_what_its_list_expands_to() -> None:
    viewer = Principal.of("vera", ["viewer"], "jwt")
    assert {p for p in NINE if viewer.allows(p)} == VIEWER
    key = Principal.of("bot", ["read", "write:cancel"], "api_key", key_id="vk_1")
    assert {p for p in NINE if key.allows(p)} == READ | {"write:cancel"}
    assert key.key_id == "vk_1"
    assert key.permissions == ("read", "write:cancel")  # the raw list is kept
    admin = Principal.of("root", ["admin"], "jwt")
    assert all(admin.allows(p) for p in NINE)
    # A role or legacy name is not itself a permission that a route could require.
    assert not admin.allows("admin")
    assert not key.allows("read")
    assert not Principal.of("x", [], "jwt").allows("read:market")


@pytest.mark.parametrize(
    ("names", "literal"),
    [
        (["admin"], True),
        (["viewer", "admin"], True),
        (["read", "write", "admin"], True),
        (["admin:keys", "admin:users", "admin:config"], False),
        (["trader"], False),
        (["Admin"], False),
        (["administrator"], False),
        ([], False),
    ],
)
def test_is_literal_admin(names: list[str], literal: bool) -> None:
    assert Principal.of("u", names, "api_key").is_literal_admin is literal


def test_anonymous_has_everything() -> None:
    assert ANONYMOUS.user_id == "anonymous"
    assert ANONYMOUS.auth_method == "disabled"
    assert ANONYMOUS.permissions == (
        "read",
        "write",
        "admin",
        "admin:keys",
        "admin:users",
        "admin:config",
    )
    assert all(ANONYMOUS.allows(p) for p in NINE)
    assert ANONYMOUS.is_literal_admin
