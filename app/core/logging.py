"""Logging to stderr: one line per record, JSON (default) or text, with the request id.

Secrets never reach the log: known secret values, tokens, API keys and `password=`-style values
are redacted from every line, whatever logger wrote it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Iterable

from app.core.jsonutil import dumps

# Set by the edge middleware for the duration of a request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "veloz_request_id", default=None
)

REDACTED = "[REDACTED]"
_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+"),  # JWTs
    re.compile(r"veloz_[0-9a-f]{64}"),  # API keys
    re.compile(r"(?i)(?<=bearer )[^\s\"',}]+"),  # whatever follows "Bearer "
)
_KEY_VALUE = re.compile(
    r"(?i)\b(\w*?(?:password|passwd|secret|api[_-]?key|token))([\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[REDACTED\])([^\s\"',}&]+)"
)


class Redactor(logging.Filter):
    """Rewrites each record's message with secrets replaced; never drops a record."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []

    def add_secrets(self, values: Iterable[str]) -> None:
        self._secrets = sorted({v for v in [*self._secrets, *values] if len(v) >= 4}, key=len)[::-1]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(REDACTED, text)
        return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


REDACTOR = Redactor()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class TextRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_label = getattr(record, "request_id", None) or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info or record.exc_text:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return dumps(entry)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_label)s]: %(message)s")


def configure_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    REDACTOR.add_secrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(TextRequestId())
    handler.addFilter(REDACTOR)
    # Other libraries' lines (warnings and up) take the same path: one format, redacted.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # uvicorn's own lines share the format, so a log collector sees one shape.
    for name in ("veloz", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler] if name in ("veloz", "uvicorn") else []
        logger.setLevel(level.upper())
        logger.propagate = name not in ("veloz", "uvicorn")
