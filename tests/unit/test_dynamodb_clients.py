"""The DynamoDB clients the roles open: how many attempts one call makes against an endpoint
that refuses connections (counted by botocore's own before-send event, not timed)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from uoom_orders.config import Settings
from uoom_orders.config.components import dynamodb_client_for, projection_client_for

# Nothing listens on port 1 of the loopback: every connection is refused at once.
REFUSING = "http://127.0.0.1:1"


def _settings(max_retries: int) -> Settings:
    return Settings(
        database_url="postgresql://unused@127.0.0.1:1/unused",
        aws_region="us-east-1",
        dynamodb_endpoint=REFUSING,
        dynamodb_max_retries=max_retries,
    )


async def _attempts_of_one_put(client: Any) -> int:
    sent: list[str] = []
    client.meta.events.register("before-send.dynamodb.PutItem", lambda **_: sent.append("x"))
    with pytest.raises(EndpointConnectionError):
        await client.put_item(TableName="t", Item={"orderId": {"S": "o"}})
    return len(sent)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


async def test_the_projectors_client_makes_one_attempt_whatever_the_retry_setting() -> None:
    # Its writer and its outage loop retry; botocore sleeping under them (up to 1 + 2 + 4 s
    # per call) would keep a projector waiting after the read model is back.
    async with projection_client_for(_settings(max_retries=1)) as client:
        assert await _attempts_of_one_put(client) == 1


async def test_the_shared_client_retries_as_configured() -> None:
    async with dynamodb_client_for(_settings(max_retries=1)) as client:
        assert await _attempts_of_one_put(client) == 2


async def test_every_request_names_the_service_as_its_user_agent() -> None:
    # What AWS's logs show as the caller; set once in the config (botocore's own default is
    # rebuilt from its components on every request).
    agents: list[str] = []
    async with dynamodb_client_for(_settings(max_retries=0)) as client:

        def record(request: Any, **_: Any) -> None:
            agents.append(request.headers["User-Agent"].decode())

        client.meta.events.register("before-send.dynamodb.PutItem", record)
        with pytest.raises(EndpointConnectionError):
            await client.put_item(TableName="t", Item={"orderId": {"S": "o"}})
    assert len(agents) == 1
    assert agents[0].startswith("uoom-orders/")
    assert " botocore/" in agents[0]
