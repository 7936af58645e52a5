"""The order ticket's checks, run in the browser, agree with the API's order model.

Every case goes through the page's own `checkOrder` and through `OrderRequest`: what the
page would send must be accepted by the API, and a field the page refuses must be refused by
the API for that same field.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page
from pydantic import ValidationError

from app.schemas.orders import OrderRequest
from tests.integration.conftest import StartGateway

BASE = {"side": "BUY", "symbol": "BTCUSDT", "order_type": "limit", "time_in_force": "GTC",
        "qty": "0.01", "price": "42000", "client_order_id": ""}  # fmt: skip
NUMBERS = [
    "1", "0.001", " 2 ", "+1", ".5", "5.", "00.010", "1E3", "1e-400", "1e400", "1_000",
    "1e1_0", "0", "0.0", "-0", "-1", "0e5", "", "abc", "1,5", "0x10", "inf", "nan",
    "Infinity", "1e", "1__0", "_1", "_", "1 0", "._5", "1.2.3", "--1",
]  # fmt: skip
CASES: list[dict[str, Any]] = [
    *({**BASE, "qty": value} for value in NUMBERS),
    *({**BASE, "price": value} for value in NUMBERS),
    *({**BASE, "order_type": "market", "price": value} for value in ("", "abc", "-1")),
    *({**BASE, "client_order_id": value}
      for value in ("ok-1", "x" * 64, "x" * 65, "has space", "tab\there", "~!@#$%^&*()",
                    "é", " padded ")),
    *({**BASE, "side": value} for value in ("buy", "SELL", "hold", "")),
    *({**BASE, "order_type": value} for value in ("LIMIT", "Market", "stop")),
    *({**BASE, "time_in_force": value} for value in ("ioc", "FOK", "DAY")),
    *({**BASE, "symbol": value} for value in ("ethusdt", "BTC-USDT", "A" * 20, "A" * 21)),
]  # fmt: skip


def api_error_fields(body: dict[str, Any]) -> set[str]:
    try:
        OrderRequest.model_validate(body)
    except ValidationError as exc:
        return {str(error["loc"][0]) for error in exc.errors()}
    return set()


async def test_ticket_checks_mirror_the_api(start_gateway: StartGateway, page: Page) -> None:
    server = await start_gateway()
    await page.goto(server.url)
    results = await page.evaluate(
        """async (cases) => {
            const { checkOrder } = await import("/js/validate.js");
            return cases.map((input) => checkOrder(input));
        }""",
        CASES,
    )
    disagreements = []
    for case, result in zip(CASES, results, strict=True):
        page_fields = set(result["errors"])
        if not page_fields:
            refused = api_error_fields(result["order"])
            if refused:
                disagreements.append(f"{case}: page sends {result['order']}, API refuses {refused}")
        else:
            accepted = page_fields - api_error_fields(case)
            if accepted:
                disagreements.append(f"{case}: page refuses {page_fields}, API accepts {accepted}")
    assert disagreements == [], "\n".join(disagreements)
    assert sum(1 for r in results if r["errors"]) > len(CASES) // 3  # both verdicts are tested
