"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import __version__
from app.api.routes import audit, auth, health, market, metrics, orders, stream, system
from app.api.routes.exchange_keys import router as exchange_keys_router
from app.api.routes.settings import router as settings_router
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.middleware.body_limit import BodyLimitMiddleware
from app.middleware.client_ip import ClientIpMiddleware
from app.middleware.edge import CorsPolicy, EdgeMiddleware
from app.observability.metrics import GatewayMetrics, RouteCachingInstrumentatorMiddleware
from app.openapi import DESCRIPTION, TAGS, build_openapi, operation_id
from app.runtime import Runtime
from app.services.runtime_config import load_overrides
from app.web import BUILTIN_UI_DIR
from app.web.static import StaticSite


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(
        settings.log_level,
        settings.log_format,
        secrets=[
            settings.admin_password.get_secret_value(),
            settings.jwt_secret.get_secret_value(),
            settings.api_key_secret.get_secret_value(),
            settings.binance_api_secret.get_secret_value(),
            settings.master_key.get_secret_value(),
        ],
    )

    gateway_metrics = GatewayMetrics()
    cors = CorsPolicy(settings.cors_origins, settings.cors_credentials)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        effective, overrides = await load_overrides(settings)
        cors.update(effective.cors_origins, effective.cors_credentials)
        for name in ("veloz", "uvicorn"):  # a stored log level counts from the start
            logging.getLogger(name).setLevel(effective.log_level.upper())
        runtime = Runtime(effective, gateway_metrics, cors, overrides)
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPIOffline(
        title="veloz-gateway",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        static_url="/docs-assets",
        redoc_url="/redoc",
        swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
    )
    install_error_handlers(app)
    for router in (
        health.router,
        market.router,
        market.account_router,
        orders.router,
        system.router,
        system.execution_router,
        stream.router,
        auth.router,
        auth.keys_router,
        auth.roles_router,
        auth.users_router,
        audit.router,
        settings_router,
        exchange_keys_router,
        metrics.router,
    ):
        app.include_router(router)

    # The web UI answers whatever no route matched: public files and the SPA fallback (F17).
    site = StaticSite(settings.static_dir or BUILTIN_UI_DIR)
    app.router.default = site.middleware(app.router.default)

    # Outermost last: the edge sees every response, including 413s and unexpected errors.
    app.add_middleware(BodyLimitMiddleware, max_body_size=settings.max_body_size)
    app.add_middleware(
        ClientIpMiddleware,
        allow=settings.ip_whitelist,
        deny=settings.ip_blacklist,
        trusted_proxies=settings.trusted_proxies,
    )
    # HTTP metrics per route template (bounded label values), the original's names included.
    app.add_middleware(
        RouteCachingInstrumentatorMiddleware,
        gateway=gateway_metrics,
        registry=gateway_metrics.registry,
        instrumentations=gateway_metrics.instrumentations(),
        excluded_handlers=["/metrics"],
        should_group_status_codes=False,
    )
    app.add_middleware(
        EdgeMiddleware,
        cors=cors,
        on_error=lambda: gateway_metrics.errors.labels(
            type="internal_error", component="http"
        ).inc(),
    )

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
