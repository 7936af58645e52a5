"""Structured logging: JSON lines (ts, level, logger, message, request_id), the text format,
and the Redactor that keeps secrets, tokens, API keys and password-like values out of every
line, exceptions included; end to end through a gateway with auth on."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.config import Settings
from app.core.logging import REDACTED, REDACTOR, Redactor, configure_logging, request_id_var
from tests.conftest import running_gateway

LOGGERS = ("veloz", "uvicorn", "uvicorn.error", "uvicorn.access")
JSON_FIELDS = ["ts", "level", "logger", "message", "request_id"]
TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJhZG1pbiIsInR5cGUiOiJhY2Nlc3MifQ"
    ".c2lnbmF0dXJlLXZhbHVlLTEyMw"
)
API_KEY = "veloz_" + "0123456789abcdef" * 4


@pytest.fixture(autouse=True)
def _restore_loggers() -> Iterator[None]:
    """configure_logging rewires process-wide loggers; put them back after each test. On the
    root logger only the handlers it added are taken away: pytest's own come and go per phase."""
    saved = {
        name: (list(logger.handlers), logger.level, logger.propagate)
        for name in LOGGERS
        for logger in [logging.getLogger(name)]
    }
    root = logging.getLogger()
    root_level = root.level
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    for handler in list(root.handlers):
        if REDACTOR in handler.filters:
            root.removeHandler(handler)
    root.setLevel(root_level)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert isinstance(line, dict)
    return lines


# --- format -----------------------------------------------------------------------------------


def test_json_lines_carry_ts_level_logger_message_and_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    log = logging.getLogger("veloz.test")
    log.debug("below the level")
    token = request_id_var.set("req-123")
    try:
        log.info("hello %s", "world")
        log.error("two\nlines")
    finally:
        request_id_var.reset(token)
    log.warning("outside a request")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /api/health HTTP/1.1" 200')

    lines = json_lines(capsys.readouterr().err)
    assert len(lines) == 4
    for line in lines:
        assert list(line) == JSON_FIELDS
        assert TS.fullmatch(line["ts"]), line["ts"]
        moment = datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert abs(moment.timestamp() - time.time()) < 60
    fields = ["level", "logger", "message", "request_id"]
    assert [[line[name] for name in fields] for line in lines] == [
        ["info", "veloz.test", "hello world", "req-123"],
        ["error", "veloz.test", "two\nlines", "req-123"],
        ["warning", "veloz.test", "outside a request", None],
        ["info", "uvicorn.access", '127.0.0.1 - "GET /api/health HTTP/1.1" 200', None],
    ]


def test_text_format_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "text")
    log = logging.getLogger("veloz.test")
    log.info("not shown")
    token = request_id_var.set("req-9")
    try:
        log.warning("careful with password=hunter2")
    finally:
        request_id_var.reset(token)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} WARNING veloz\.test \[req-9\]: "
        r"careful with password=\[REDACTED\]",
        lines[0],
    ), lines[0]


def test_exceptions_are_logged_with_their_text_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json", secrets=["db-pass-XYZ-1"])
    log = logging.getLogger("veloz.test")
    try:
        raise RuntimeError(f"connect with password=hunter2 to db-pass-XYZ-1 using {JWT}")
    except RuntimeError:
        log.exception("failed for Bearer %s", "opaque-token-1")
    [line] = json_lines(capsys.readouterr().err)
    assert list(line) == [*JSON_FIELDS, "exc"]
    assert line["message"] == f"failed for Bearer {REDACTED}"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith(
        f"RuntimeError: connect with password={REDACTED} to {REDACTED} using {REDACTED}"
    )
    for secret in ("hunter2", "db-pass-XYZ-1", JWT, "opaque-token-1"):
        assert secret not in json.dumps(line), secret


def test_text_format_redacts_exceptions_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    try:
        raise ValueError(f"bad key {API_KEY}")
    except ValueError:
        logging.getLogger("veloz.test").exception("boom")
    err = capsys.readouterr().err
    assert API_KEY not in err
    assert f"ValueError: bad key {REDACTED}" in err


# --- the redactor -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {JWT} rest", f"token {REDACTED} rest"),
        (f"key {API_KEY} used", f"key {REDACTED} used"),
        ("password=hunter2&user=bob", f"password={REDACTED}&user=bob"),
        ("PASSWORD=Hunter2", f"PASSWORD={REDACTED}"),
        ('{"user_id": "bob", "password": "hunter2"}',
         f'{{"user_id": "bob", "password": "{REDACTED}"}}'),
        ('{"refresh_token": "opaque-refresh-1"}', f'{{"refresh_token": "{REDACTED}"}}'),
        (f'{{"refresh_token": "{JWT}"}}', f'{{"refresh_token": "{REDACTED}"}}'),
        ("Authorization: Bearer abc.def.ghi", f"Authorization: Bearer {REDACTED}"),
        ("authorization: bearer opaque", f"authorization: bearer {REDACTED}"),
        ("X-API-Key: not-a-valid-key", f"X-API-Key: {REDACTED}"),
        ("api_key=xyz123 next", f"api_key={REDACTED} next"),
        ("client_secret: s3", f"client_secret: {REDACTED}"),
        ("order c1 placed qty=0.01 by bob", "order c1 placed qty=0.01 by bob"),
    ],
)  # fmt: skip
def test_redactor_patterns(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_redactor_handles_python_reprs_of_dicts() -> None:
    """`log.info("body: %s", body)` renders a dict with single quotes."""
    redactor = Redactor()
    assert redactor.redact("{'user_id': 'bob', 'password': 'hunter2'}") == (
        f"{{'user_id': 'bob', 'password': '{REDACTED}'}}"
    )
    assert redactor.redact("{'refresh_token': 'opaque-refresh-1'}") == (
        f"{{'refresh_token': '{REDACTED}'}}"
    )


def test_redactor_removes_registered_secrets_longest_first() -> None:
    redactor = Redactor()
    redactor.add_secrets(["abcd-1234", "abcd-1234-efgh-5678"])
    assert redactor.redact("x abcd-1234-efgh-5678 y abcd-1234 z") == (
        f"x {REDACTED} y {REDACTED} z"
    )
    redactor.add_secrets(["zz-secret-zz"])  # more can be added later
    assert redactor.redact("a zz-secret-zz abcd-1234") == f"a {REDACTED} {REDACTED}"


def test_redactor_rewrites_records_it_filters() -> None:
    redactor = Redactor()
    redactor.add_secrets(["s3cret-value"])
    record = logging.LogRecord(
        "veloz.test", logging.INFO, __file__, 1, "login %s with %s", ("bob", "s3cret-value"), None
    )
    assert redactor.filter(record) is True
    assert record.getMessage() == f"login bob with {REDACTED}"
    plain = logging.LogRecord("veloz.test", logging.INFO, __file__, 1, "nothing %d", (1,), None)
    assert redactor.filter(plain) is True
    assert plain.getMessage() == "nothing 1"


def test_dict_arguments_are_redacted_in_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    body = {"user_id": "bob", "password": "hunter2-secret"}
    logging.getLogger("veloz.test").info("login body: %s", body)
    [line] = json_lines(capsys.readouterr().err)
    assert "hunter2-secret" not in line["message"]
    assert line["message"] == f"login body: {{'user_id': 'bob', 'password': '{REDACTED}'}}"


# --- end to end -------------------------------------------------------------------------------


async def test_no_secret_reaches_the_log_of_a_running_gateway(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    admin_password = "e2e-admin-password-1"
    wrong_password = "e2e-wrong-password-2"
    settings = make_settings(
        auth_enabled=True,
        admin_password=admin_password,
        refresh_rotation=True,
        log_level="debug",
    )
    secrets = [admin_password, wrong_password]
    async with running_gateway(settings) as gw:
        client = gw.client
        jwt_secret = (settings.data_dir / "jwt_secret").read_text(encoding="utf-8").strip()
        key_secret = (settings.data_dir / "api_key_secret").read_text(encoding="utf-8").strip()
        secrets += [jwt_secret, key_secret]

        login = {"user_id": "admin", "password": admin_password}
        response = await client.post("/api/auth/login", json=login)
        assert response.status_code == 200
        pair = response.json()
        secrets += [pair["access_token"], pair["refresh_token"]]
        auth = {"Authorization": f"Bearer {pair['access_token']}"}
        response = await client.post("/api/auth/keys", json={"name": "bot"}, headers=auth)
        assert response.status_code == 201
        raw_key = response.json()["api_key"]
        secrets.append(raw_key)
        wrong = {"user_id": "admin", "password": wrong_password}
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
        first = {"refresh_token": pair["refresh_token"]}
        renewed = await client.post("/api/auth/refresh", json=first)
        assert renewed.status_code == 200
        secrets += [renewed.json()["access_token"], renewed.json()["refresh_token"]]
        # Reusing a rotated refresh token logs a warning, inside the request.
        reuse = await client.post(
            "/api/auth/refresh", json=first, headers={"X-Request-ID": "rq-reuse"}
        )
        assert reuse.status_code == 401
        assert (await client.get("/api/market", headers={"X-API-Key": raw_key + "x"})).is_error

        # Careless lines, as a future change might write them: still nothing leaks.
        careless = logging.getLogger("veloz.careless")
        careless.info("admin password is %s", admin_password)
        careless.info("signing with %s and %s", jwt_secret, key_secret)
        careless.info("issued %s / %s", pair["access_token"], pair["refresh_token"])
        careless.info("new key %s", raw_key)
        careless.info("failed login: password=%s", wrong_password)

    lines = json_lines(capsys.readouterr().err)
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in secrets:
        assert secret not in text, secret
    messages = [line["message"] for line in lines if line["logger"] == "veloz.careless"]
    assert len(messages) == 5
    assert all(REDACTED in message for message in messages)
    assert messages[0] == f"admin password is {REDACTED}"
    reuse_lines = [line for line in lines if "reuse" in line["message"]]
    assert [line["request_id"] for line in reuse_lines] == ["rq-reuse"]
    assert reuse_lines[0]["level"] == "warning"
    assert reuse_lines[0]["logger"] == "veloz.auth"
    started = [line for line in lines if line["message"].startswith("gateway started")]
    assert len(started) == 1
    assert started[0]["request_id"] is None
