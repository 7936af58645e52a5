"""What the edge learned about a request (client address, request id, caller), and audit
recording from request handlers."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.auth.permissions import Principal


def client_ip(request: Request) -> str:
    ip = request.scope.get("state", {}).get("client_ip")
    if ip:
        return str(ip)
    return request.client.host if request.client else ""


def caller(request: Request) -> Principal | None:
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    return principal


async def audit(
    request: Request,
    log_type: str,
    action: str,
    details: dict[str, Any] | None = None,
    *,
    user_id: str | None = None,
) -> None:
    """Record an audit entry for this request: who, from where, with the request id."""
    who = caller(request)
    await request.app.state.runtime.audit.record(
        log_type,
        action,
        user_id=user_id or (who.user_id if who else None),
        ip_address=client_ip(request),
        details=details,
        request_id=request.scope.get("state", {}).get("request_id"),
    )
