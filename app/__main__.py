"""`python -m app`: start the gateway with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import argparse
import signal
import sys

from app import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Start veloz-gateway. Every setting comes from VELOZ_* environment "
        "variables or the YAML file named by VELOZ_CONFIG_FILE; the options below override "
        "them.",
    )
    parser.add_argument("--host", help="address to listen on (VELOZ_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (VELOZ_PORT, default 8080)")
    parser.add_argument("--version", action="version", version=f"veloz-gateway {__version__}")
    args = parser.parse_args(argv)

    from app.core.config import Settings, describe_settings_error

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = Settings(**overrides)
    except Exception as exc:  # one clear line, no traceback
        print(describe_settings_error(exc), file=sys.stderr)
        return 2

    import uvicorn

    from app.main import create_app

    # uvicorn stops gracefully on SIGTERM, then re-raises the signal so the process would end
    # "killed by SIGTERM"; with this no-op handler in place the graceful stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        log_config=None,  # create_app configured logging; uvicorn keeps it
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
