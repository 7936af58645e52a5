"""IP allow and deny lists, and X-Forwarded-For from trusted proxies.

Every request first has its client address checked: on VELOZ_IP_BLACKLIST, or missing from a
non-empty VELOZ_IP_WHITELIST → 403 ip_forbidden (the deny list wins). The address is the socket
peer, unless the peer is one of VELOZ_TRUSTED_PROXIES: then it is the right-most
X-Forwarded-For hop that is not itself a trusted proxy.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from fastapi import FastAPI

from tests.api.conftest import (
    SettingsFactory,
    admin_login,
    bearer,
    client_at,
    rate_limit_headers,
)
from tests.api.test_edge import SECURITY_HEADERS
from tests.conftest import running_gateway

PROXY = "10.0.0.5"
TRUSTED = "10.0.0.0/24"


async def get_from(
    app: FastAPI,
    peer: str,
    path: str = "/health",
    forwarded: Sequence[str] = (),
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """GET `path` from socket peer `peer`, with one X-Forwarded-For header per `forwarded`."""
    sent = [("X-Forwarded-For", value) for value in forwarded] + list((headers or {}).items())
    async with client_at(app, peer) as client:
        return await client.get(path, headers=sent)


def assert_ip_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "ip_forbidden"
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str)
    assert body["message"]
    assert response.headers["content-type"] == "application/json"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert response.headers["x-request-id"]
    assert rate_limit_headers(response) == {}


# --- allow and deny lists --------------------------------------------------------------------


async def test_a_blacklisted_network_is_refused_everywhere(make_settings: SettingsFactory) -> None:
    settings = make_settings(ip_blacklist="203.0.113.0/24, 198.51.100.9")
    async with running_gateway(settings) as gateway:
        for peer in ("203.0.113.1", "203.0.113.254", "198.51.100.9"):
            for path in ("/health", "/api/health", "/api/market", "/api/nowhere", "/docs"):
                assert_ip_forbidden(await get_from(gateway.app, peer, path))
            async with client_at(gateway.app, peer) as client:
                response = await client.post(
                    "/api/order", json={"qty": 1, "price": 1, "client_order_id": "blocked"}
                )
                assert_ip_forbidden(response)
        assert gateway.runtime.state.orders.get("blocked") is None
        for peer in ("203.0.114.1", "198.51.100.10", "127.0.0.1"):
            response = await get_from(gateway.app, peer)
            assert response.status_code == 200, peer
            assert response.json() == {"ok": True}


async def test_a_whitelist_lets_only_its_networks_in(make_settings: SettingsFactory) -> None:
    settings = make_settings(ip_whitelist=["192.168.0.0/16", "127.0.0.1"])
    async with running_gateway(settings) as gateway:
        for peer in ("192.168.0.1", "192.168.255.254", "127.0.0.1"):
            assert (await get_from(gateway.app, peer, "/api/health")).status_code == 200, peer
        for peer in ("10.0.0.1", "192.169.0.1", "127.0.0.2"):
            assert_ip_forbidden(await get_from(gateway.app, peer, "/api/health"))


async def test_the_deny_list_wins_over_the_allow_list(make_settings: SettingsFactory) -> None:
    settings = make_settings(ip_whitelist="10.0.0.0/8", ip_blacklist="10.1.0.0/16")
    async with running_gateway(settings) as gateway:
        assert (await get_from(gateway.app, "10.2.0.1")).status_code == 200
        assert_ip_forbidden(await get_from(gateway.app, "10.1.2.3"))
        assert_ip_forbidden(await get_from(gateway.app, "11.0.0.1"))


async def test_ipv6_networks(make_settings: SettingsFactory) -> None:
    settings = make_settings(ip_blacklist="2001:db8::/32")
    async with running_gateway(settings) as gateway:
        assert_ip_forbidden(await get_from(gateway.app, "2001:db8::1"))
        assert (await get_from(gateway.app, "2001:db9::1")).status_code == 200


async def test_the_ip_check_comes_before_authentication(auth_settings: SettingsFactory) -> None:
    settings = auth_settings(ip_blacklist="198.51.100.0/24")
    async with running_gateway(settings) as gateway:
        admin = await admin_login(gateway.client)  # from 127.0.0.1
        # Valid credentials do not help a refused address; none are needed to be refused.
        for headers in (bearer(admin), {}):
            assert_ip_forbidden(
                await get_from(gateway.app, "198.51.100.1", "/api/market", (), headers)
            )
        async with client_at(gateway.app, "198.51.100.1") as client:
            response = await client.post(
                "/api/auth/login", json={"user_id": "admin", "password": "whatever-it-is"}
            )
            assert_ip_forbidden(response)


# --- trusted proxies ---------------------------------------------------------------------------


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(trusted_proxies=TRUSTED, ip_blacklist="203.0.113.7, 198.51.100.1")
    async with running_gateway(settings) as gateway:
        app = gateway.app
        # Through the proxy: the forwarded client is judged.
        assert_ip_forbidden(await get_from(app, PROXY, forwarded=["203.0.113.7"]))
        assert (await get_from(app, PROXY, forwarded=["203.0.113.8"])).status_code == 200
        # Without the header the proxy itself is the client.
        assert (await get_from(app, PROXY)).status_code == 200
        # From an untrusted peer the header is ignored: it cannot hide a refused address ...
        assert_ip_forbidden(await get_from(app, "198.51.100.1", forwarded=["192.0.2.1"]))
        # ... nor get someone else refused.
        assert (await get_from(app, "198.51.100.2", forwarded=["203.0.113.7"])).status_code == 200


async def test_a_spoofed_forwarded_for_does_not_pass_a_whitelist(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(trusted_proxies=TRUSTED, ip_whitelist="192.0.2.0/24, 10.0.0.0/24")
    async with running_gateway(settings) as gateway:
        app = gateway.app
        assert_ip_forbidden(await get_from(app, "198.51.100.1", forwarded=["192.0.2.1"]))
        assert (await get_from(app, PROXY, forwarded=["192.0.2.1"])).status_code == 200
        assert_ip_forbidden(await get_from(app, PROXY, forwarded=["198.51.100.1"]))


async def test_the_right_most_untrusted_hop_is_the_client(make_settings: SettingsFactory) -> None:
    settings = make_settings(trusted_proxies=TRUSTED, ip_blacklist="192.0.2.1")
    async with running_gateway(settings) as gateway:
        app = gateway.app
        # client-supplied, real client, inner proxy: the inner proxy is skipped.
        chain = "203.0.113.7, 192.0.2.1, 10.0.0.9"
        assert_ip_forbidden(await get_from(app, PROXY, forwarded=[chain]))
        # A refused address further left is only what the client claimed: not believed.
        chain = "192.0.2.1, 203.0.113.7, 10.0.0.9"
        assert (await get_from(app, PROXY, forwarded=[chain])).status_code == 200
        # Spaces and empty items do not matter.
        assert_ip_forbidden(await get_from(app, PROXY, forwarded=[" 192.0.2.1 ,, 10.0.0.8 ,"]))


async def test_several_forwarded_for_headers_are_one_list(make_settings: SettingsFactory) -> None:
    # RFC 9110 §5.3: repeated header lines are one comma-separated list, in order. A proxy that
    # adds its own line (HAProxy's `option forwardfor`) puts the real client in the last one;
    # the client's own line comes first and must not be believed.
    settings = make_settings(trusted_proxies=TRUSTED, ip_blacklist="192.0.2.1")
    async with running_gateway(settings) as gateway:
        app = gateway.app
        response = await get_from(app, PROXY, forwarded=["203.0.113.7", "192.0.2.1"])
        assert_ip_forbidden(response)
        response = await get_from(app, PROXY, forwarded=["192.0.2.1", "203.0.113.7"])
        assert response.status_code == 200


async def test_public_rate_limits_key_on_the_forwarded_client(
    auth_settings: SettingsFactory,
) -> None:
    settings = auth_settings(trusted_proxies=TRUSTED, rate_limit_capacity=2, rate_limit_refill=0.01)
    async with running_gateway(settings) as gateway:
        app = gateway.app

        async def remaining(peer: str, forwarded: Sequence[str] = ()) -> str:
            """X-RateLimit-Remaining of a GET /api/health, or "429" when refused."""
            response = await get_from(app, peer, "/api/health", forwarded)
            if response.status_code == 429:
                return "429"
            assert response.status_code == 200, response.text
            return response.headers["x-ratelimit-remaining"]

        # Behind the proxy, each forwarded client has its own bucket.
        assert [await remaining(PROXY, ["192.0.2.1"]) for _ in range(3)] == ["1", "0", "429"]
        assert await remaining(PROXY, ["192.0.2.2"]) == "1"
        assert await remaining(PROXY) == "1"  # the proxy's own requests
        # The forwarded client's bucket is the same as when it comes directly.
        assert await remaining("192.0.2.2") == "0"
        # An untrusted peer cannot get fresh buckets by inventing forwarded addresses.
        peer = "198.51.100.1"
        spoofs = [["192.0.2.10"], ["192.0.2.11"], ["192.0.2.12"]]
        assert [await remaining(peer, spoof) for spoof in spoofs] == ["1", "0", "429"]
        assert await remaining("192.0.2.10") == "1"
