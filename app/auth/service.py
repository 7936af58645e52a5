"""Identity rules: who a request is, logins and tokens, API keys, role assignments, users.

Users, roles, keys and revocations are held in memory for O(1) checks on every request, and
written through to the database before a change is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from pathlib import Path

from app.auth.login_limit import LoginFailures, MemoryLoginFailures
from app.auth.passwords import PasswordHasher
from app.auth.permissions import DEFAULT_ROLES, Principal
from app.auth.profile import AuthStatus, CallerProfile, auth_status, caller_profile
from app.auth.ratelimit import Decision, MemoryBuckets, RateLimiter, decide
from app.auth.records import ApiKey, RoleAssignment, User
from app.auth.secrets import load_or_create
from app.auth.shared import SharedAuth
from app.auth.tokens import REFRESH_LIFETIME, InvalidToken, TokenClaims, TokenCodec
from app.core.config import Settings
from app.core.errors import ApiError
from app.core.logging import REDACTOR
from app.db.identity import IdentityRepository

log = logging.getLogger("veloz.auth")

ADMIN_USER = "admin"
MIN_PASSWORD_LENGTH = 8
DEFAULT_KEY_PERMISSIONS = ["read", "write"]
TOUCH_INTERVAL = 5.0  # seconds between writes of API keys' last-used times


def _now() -> int:
    return int(time.time())


def _unauthorized(code: str) -> ApiError:
    return ApiError(401, code)


class AuthService:
    def __init__(self, settings: Settings, repository: IdentityRepository) -> None:
        self.settings = settings
        self.enabled = settings.auth_enabled
        self._repository = repository
        data_dir = Path(settings.data_dir)
        jwt_secret = load_or_create(data_dir / "jwt_secret", settings.jwt_secret.get_secret_value())
        key_secret = load_or_create(
            data_dir / "api_key_secret", settings.api_key_secret.get_secret_value()
        )
        REDACTOR.add_secrets([jwt_secret, key_secret])  # never in a log line
        self.tokens = TokenCodec(jwt_secret, settings.token_expiry)
        self._key_secret = key_secret.encode()
        self._passwords: PasswordHasher | None = None
        self.limiter = RateLimiter(
            MemoryBuckets(), settings.rate_limit_capacity, settings.rate_limit_refill
        )
        self.login_failures: LoginFailures = MemoryLoginFailures()
        # Set when replicas share rate limits, revocations and identity changes (Redis).
        self.shared: SharedAuth | None = None
        self.users: dict[str, User] = {}
        self.roles: dict[str, RoleAssignment] = {}
        self.keys: dict[str, ApiKey] = {}
        self._keys_by_hash: dict[str, ApiKey] = {}
        self._revoked: dict[str, int] = {}
        self._touched: dict[str, int] = {}
        self._toucher: asyncio.Task[None] | None = None

    @property
    def passwords(self) -> PasswordHasher:
        if self._passwords is None:  # created on the loop: it holds an asyncio.Semaphore
            self._passwords = PasswordHasher()
        return self._passwords

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reload()
        await self._bootstrap_admin()
        if self.enabled and not self._has_usable_admin():
            raise RuntimeError(
                "VELOZ_ADMIN_PASSWORD is empty and no enabled user has the admin role: "
                "with auth enabled nobody could administer the gateway"
            )
        self._toucher = asyncio.create_task(self._touch_loop(), name="veloz-key-last-used")
        if self.shared is not None:
            self.shared.on_identity_change(self.reload)

    async def reload(self) -> None:
        """Read users, roles, keys and revocations from the database (at start, and when
        another replica changed them)."""
        users, roles, keys, revoked = await asyncio.to_thread(self._repository.load, _now())
        self.users = {u.user_id: u for u in users}
        self.roles = {r.user_id: r for r in roles}
        self.keys = {k.key_id: k for k in keys}
        self._keys_by_hash = {k.key_hash: k for k in keys if not k.revoked}
        self._revoked = revoked

    async def stop(self) -> None:
        if self._toucher is not None:
            self._toucher.cancel()
            await asyncio.wait([self._toucher])  # unlike `await`, keeps our own cancellation
        await self._flush_touched()

    async def _bootstrap_admin(self) -> None:
        password = self.settings.admin_password.get_secret_value()
        if not password:
            return
        user = self.users.get(ADMIN_USER)
        existed = user is not None
        if user is None or not await self.passwords.verify(password, user.password_hash):
            now = _now()
            user = User(
                user_id=ADMIN_USER,
                password_hash=await self.passwords.hash(password),
                disabled=False,
                created_at=user.created_at if user else now,
                updated_at=now,
                last_login_at=user.last_login_at if user else None,
            )
            await self._save_user(user)
            log.info("admin user %s from VELOZ_ADMIN_PASSWORD",
                     "updated" if existed else "created")  # fmt: skip
        roles = self.roles[ADMIN_USER].roles if ADMIN_USER in self.roles else []
        if "admin" not in roles:
            await self.set_roles(ADMIN_USER, [*roles, "admin"], by="system")
        if user.disabled:
            user.disabled = False
            await self._save_user(user)

    def _has_usable_admin(self) -> bool:
        return any(
            not user.disabled and "admin" in self.roles_of(user.user_id)
            for user in self.users.values()
        ) or any(not k.revoked and "admin" in k.permissions for k in self.keys.values())

    # --- who is calling ---------------------------------------------------------------------
    def authenticate(self, bearer: str | None, api_key: str | None) -> Principal:
        """A bearer token wins over an API key, even when it is invalid (contract §2.5)."""
        if bearer is not None:
            try:
                claims = self.tokens.verify_access(bearer)
            except InvalidToken:
                raise _unauthorized("invalid_token") from None
            if claims.jti in self._revoked:
                raise _unauthorized("invalid_token")
            user = self.users.get(claims.sub)
            if user is None or user.disabled:
                raise _unauthorized("invalid_token")
            return Principal.of(
                user.user_id, self.roles_of(user.user_id), "jwt",
                token_jti=claims.jti, token_exp=claims.exp,
            )  # fmt: skip
        if api_key:
            key = self._keys_by_hash.get(self._hash_key(api_key))
            now = _now()
            if key is None or key.revoked or (key.expires_at is not None and key.expires_at <= now):
                raise _unauthorized("invalid_api_key")
            owner = self.users.get(key.user_id)
            if owner is not None and owner.disabled:  # a disabled user's keys stop too
                raise _unauthorized("invalid_api_key")
            key.last_used_at = now
            self._touched[key.key_id] = now
            return Principal.of(
                key.user_id, key.permissions or DEFAULT_KEY_PERMISSIONS, "api_key",
                key_id=key.key_id,
            )  # fmt: skip
        raise _unauthorized("authentication_required")

    def status(self) -> AuthStatus:
        """Public: whether callers must authenticate, and how they can."""
        return auth_status(self.enabled)

    def profile(self, principal: Principal) -> CallerProfile:
        return caller_profile(principal)

    async def rate_limit(self, identity: str) -> Decision:
        if self.shared is None:
            return self.limiter.check(identity)
        capacity, refill = self.limiter.capacity, self.limiter.refill
        allowed, tokens = await self.shared.take_token(identity, capacity, refill)
        return decide(allowed, tokens, capacity, refill)

    async def check_revoked(self, principal: Principal) -> None:
        """With replicas, a token revoked on another one: `authenticate` saw only ours."""
        shared, jti = self.shared, principal.token_jti
        if shared is not None and jti and await shared.any_revoked([jti]):
            raise _unauthorized("invalid_token")

    async def _is_revoked(self, token_id: str) -> bool:
        if token_id in self._revoked:
            return True
        return self.shared is not None and await self.shared.any_revoked([token_id])

    def roles_of(self, user_id: str) -> list[str]:
        assignment = self.roles.get(user_id)
        return list(assignment.roles) if assignment else list(DEFAULT_ROLES)

    # --- tokens -----------------------------------------------------------------------------
    async def login(self, user_id: str, password: str, client_ip: str) -> dict[str, object]:
        if not await self.login_failures.allowed(client_ip, user_id):
            retry = await self.login_failures.retry_after(client_ip, user_id)
            raise ApiError(429, "rate_limit_exceeded", "too many failed logins",
                           headers={"Retry-After": str(retry)})  # fmt: skip
        user = self.users.get(user_id)
        valid = await self.passwords.verify(password, user.password_hash if user else None)
        if not valid or user is None or user.disabled:
            await self.login_failures.failed(client_ip, user_id)
            raise _unauthorized("invalid_credentials")
        user.last_login_at = _now()
        await self._save_user(user, notify=False)
        family = secrets.token_hex(16) if self.settings.refresh_rotation else None
        return {
            "access_token": self.tokens.issue_access(user_id),
            "refresh_token": self.tokens.issue_refresh(user_id, family),
            "token_type": "Bearer",
            "expires_in": self.settings.token_expiry,
        }

    async def refresh(self, refresh_token: str) -> dict[str, object]:
        claims = await self._valid_refresh(refresh_token)
        if claims is None:
            raise _unauthorized("invalid_refresh_token")
        answer: dict[str, object] = {
            "user_id": claims.sub,  # for the caller's audit entry; not part of the answer
            "access_token": self.tokens.issue_access(claims.sub),
            "token_type": "Bearer",
            "expires_in": self.settings.token_expiry,
        }
        if self.settings.refresh_rotation:
            # The presented token is spent; presenting it again means it leaked (see below).
            family = claims.fam or secrets.token_hex(16)
            await self._revoke({claims.jti: claims.exp, f"used:{claims.jti}": claims.exp})
            answer["refresh_token"] = self.tokens.issue_refresh(claims.sub, family)
        return answer

    async def _valid_refresh(self, token: str) -> TokenClaims | None:
        try:
            claims = self.tokens.verify_refresh(token)
        except InvalidToken:
            return None
        if claims.fam is not None and await self._is_revoked(f"fam:{claims.fam}"):
            return None
        if await self._is_revoked(claims.jti):
            if claims.fam is not None and await self._is_revoked(f"used:{claims.jti}"):
                # Reuse of a rotated token: someone else holds the family. End all of it.
                # The family's newest token may live a full lifetime from now.
                await self._revoke({f"fam:{claims.fam}": _now() + REFRESH_LIFETIME})
                log.warning("refresh token reuse detected for %s; family revoked", claims.sub)
            return None
        user = self.users.get(claims.sub)
        if user is None or user.disabled:
            return None
        return claims

    async def logout(self, refresh_token: str, access: Principal | None) -> str | None:
        """Revoke the refresh token and the access token presented with it (F14); returns
        whose tokens they were, when that can be told."""
        revoke: dict[str, int] = {}
        user_id = access.user_id if access is not None else None
        with contextlib.suppress(InvalidToken):
            claims = self.tokens.verify_refresh(refresh_token)
            user_id = claims.sub
            revoke[claims.jti] = claims.exp
            if claims.fam is not None:
                revoke[f"fam:{claims.fam}"] = _now() + REFRESH_LIFETIME
        if access is not None and access.token_jti and access.token_exp:
            revoke[access.token_jti] = access.token_exp
        if revoke:
            await self._revoke(revoke)
        return user_id

    async def _revoke(self, token_ids: dict[str, int]) -> None:
        await asyncio.to_thread(self._repository.revoke, token_ids)
        self._revoked.update(token_ids)
        if self.shared is not None:
            await self.shared.revoke(token_ids)  # before the answer: every replica refuses now

    # --- API keys ---------------------------------------------------------------------------
    def _hash_key(self, raw: str) -> str:
        return hmac.new(self._key_secret, raw.encode(), hashlib.sha256).hexdigest()

    def list_keys(self, principal: Principal) -> list[ApiKey]:
        if principal.is_literal_admin:
            return list(self.keys.values())
        return [k for k in self.keys.values() if k.user_id == principal.user_id]

    async def create_key(
        self, owner: str, name: str, permissions: list[str], expires_at: int | None
    ) -> tuple[ApiKey, str]:
        raw = "veloz_" + secrets.token_hex(32)
        key = ApiKey(
            key_id="vk_" + secrets.token_hex(8),
            key_hash=self._hash_key(raw),
            user_id=owner,
            name=name,
            permissions=permissions or list(DEFAULT_KEY_PERMISSIONS),
            created_at=_now(),
            expires_at=expires_at,
        )
        await asyncio.to_thread(self._repository.save_key, key)
        self.keys[key.key_id] = key
        self._keys_by_hash[key.key_hash] = key
        await self._identity_changed()
        return key, raw

    async def revoke_key(self, key_id: str) -> ApiKey | None:
        key = self.keys.get(key_id)
        if key is None:
            return None
        if not key.revoked:
            key.revoked = True
            await asyncio.to_thread(self._repository.save_key, key)
            self._keys_by_hash.pop(key.key_hash, None)
            await self._identity_changed()
        return key

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_INTERVAL)
            now = _now()
            # Expired tokens fail on `exp` anyway; their revocations need not stay in memory.
            self._revoked = {k: exp for k, exp in self._revoked.items() if exp >= now}
            try:
                await self._flush_touched()
            except Exception:
                log.exception("could not record API keys' last use")

    async def _flush_touched(self) -> None:
        if self._touched:
            touched, self._touched = self._touched, {}
            await asyncio.to_thread(self._repository.touch_keys, touched)

    # --- roles ------------------------------------------------------------------------------
    async def set_roles(self, user_id: str, roles: list[str], by: str) -> RoleAssignment:
        now = _now()
        current = self.roles.get(user_id)
        assignment = RoleAssignment(
            user_id=user_id,
            roles=list(roles),
            created_at=current.created_at if current else now,
            updated_at=now,
            created_by=current.created_by if current else by,
        )
        await asyncio.to_thread(self._repository.save_roles, assignment)
        self.roles[user_id] = assignment
        await self._identity_changed()
        return assignment

    # --- users ------------------------------------------------------------------------------
    async def create_user(self, user_id: str, password: str, roles: list[str], by: str) -> User:
        now = _now()
        user = User(user_id, await self.passwords.hash(password), False, now, now)
        await self._save_user(user)
        await self.set_roles(user_id, roles, by)
        return user

    async def set_disabled(self, user: User, disabled: bool) -> None:
        user.disabled = disabled
        user.updated_at = _now()
        await self._save_user(user)

    async def _save_user(self, user: User, notify: bool = True) -> None:
        await asyncio.to_thread(self._repository.save_user, user)
        self.users[user.user_id] = user
        if notify:
            await self._identity_changed()

    async def _identity_changed(self) -> None:
        if self.shared is not None:
            await self.shared.identity_changed()
