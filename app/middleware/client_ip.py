"""Finds the client's address and applies the IP allow and deny lists.

`X-Forwarded-For` is honoured only when the peer is a trusted proxy; the client is then the
right-most address that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.jsonutil import dumps_bytes

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _in(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class ClientIpMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        allow: Sequence[str],
        deny: Sequence[str],
        trusted_proxies: Sequence[str],
    ) -> None:
        self.app = app
        self.allow = _networks(allow)
        self.deny = _networks(deny)
        self.proxies = _networks(trusted_proxies)

    def client_ip(self, scope: Scope) -> str:
        peer: str = scope["client"][0] if scope.get("client") else ""
        if not self.proxies or not _in(peer, self.proxies):
            return peer
        # Several header lines form one list, in order (RFC 9110 §5.3).
        hops: list[str] = [
            hop.strip()
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            if not _in(hop, self.proxies):
                return hop
        return peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ip = self.client_ip(scope)
        scope.setdefault("state", {})["client_ip"] = ip
        refused = (self.deny and _in(ip, self.deny)) or (self.allow and not _in(ip, self.allow))
        if refused:
            body = dumps_bytes({"error": "ip_forbidden", "message": "your address is not allowed"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
