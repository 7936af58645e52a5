"""The whole gateway on PostgreSQL, through HTTP: identity, audit, settings and configuration
are written there and read back after a restart."""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from tests.conftest import running_gateway

ADMIN_PASSWORD = "admin-password-1"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_identity_audit_settings_and_config_survive_a_restart(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    settings = make_settings(
        database_url=postgres_url, auth_enabled=True, admin_password=ADMIN_PASSWORD
    )
    async with running_gateway(settings) as gateway:
        client = gateway.client
        login = await client.post(
            "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        admin = _bearer(login.json()["access_token"])
        user = await client.post(
            "/api/auth/users",
            json={"user_id": "carol", "password": "carol-password", "roles": ["trader"]},
            headers=admin,
        )
        assert user.status_code == 201, user.text
        key = await client.post("/api/auth/keys", json={"name": "bot"}, headers=admin)
        assert key.status_code == 201, key.text
        raw_key = key.json()["api_key"]
        saved = await client.post(
            "/api/settings",
            json={"section": "general", "data": {"language": "zh"}},
            headers=admin,
        )
        assert saved.status_code == 200, saved.text
        config = await client.post("/api/config", json={"rate_limit_capacity": 500}, headers=admin)
        assert config.status_code == 200, config.text
        carol = await client.post(
            "/api/auth/login", json={"user_id": "carol", "password": "carol-password"}
        )
        carol_pair = carol.json()
        logout = await client.post(
            "/api/auth/logout",
            json={"refresh_token": carol_pair["refresh_token"]},
            headers=_bearer(carol_pair["access_token"]),
        )
        assert logout.status_code == 200, logout.text

    async with running_gateway(settings) as gateway:
        client = gateway.client
        again = await client.post(
            "/api/auth/login", json={"user_id": "carol", "password": "carol-password"}
        )
        assert again.status_code == 200, again.text
        revoked = await client.get("/api/orders", headers=_bearer(carol_pair["access_token"]))
        assert (revoked.status_code, revoked.json()["error"]) == (401, "invalid_token")
        assert (await client.get("/api/orders", headers={"X-API-Key": raw_key})).status_code == 200
        admin = _bearer(
            (
                await client.post(
                    "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
                )
            ).json()["access_token"]
        )
        document = (await client.get("/api/settings", headers=admin)).json()
        assert document["general"]["language"] == "zh"
        effective = (await client.get("/api/config", headers=admin)).json()["effective"]
        assert effective["rate_limit_capacity"] == 500
        await gateway.runtime.audit.flush()
        logs = await client.get(
            "/api/audit/logs", params={"log_type": "auth", "limit": 100}, headers=admin
        )
        actions = {entry["action"] for entry in logs.json()["logs"]}
        assert {"login", "logout"} <= actions
