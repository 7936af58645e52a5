from tests.conftest import Gateway


async def test_health(gateway: Gateway) -> None:
    response = await gateway.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
