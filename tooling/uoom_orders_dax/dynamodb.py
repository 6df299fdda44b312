"""The DynamoDB endpoint behind DAX: an aiobotocore client, errors in DAX's shape, and the
tables' key schemas (which DAX needs to read and write keys)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.keys import KeySchema

_KEY_SCHEMA_TTL_SECONDS = 60.0  # the client refreshes its own copy every minute too


class DynamoDBForwarder:
    """Calls DynamoDB's low-level API; an async context manager that owns the client."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._endpoint = endpoint
        self._region = region
        self._credentials = (access_key_id, secret_access_key)
        self._timeout = timeout_seconds
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._schemas: dict[str, tuple[float, KeySchema]] = {}

    async def __aenter__(self) -> DynamoDBForwarder:
        config = Config(
            connect_timeout=self._timeout,
            read_timeout=self._timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "dynamodb",
                endpoint_url=self._endpoint,
                region_name=self._region,
                aws_access_key_id=self._credentials[0],
                aws_secret_access_key=self._credentials[1],
                config=config,
            )
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._client = None
        await self._stack.aclose()

    async def call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One DynamoDB call; its errors come back as DaxError."""
        if self._client is None:
            raise DaxError.internal("the DynamoDB client is closed")
        try:
            answer: dict[str, Any] = await getattr(self._client, operation)(**request)
        except ClientError as error:
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            raise DaxError.from_dynamodb(
                str(details.get("Code", "InternalServerError")),
                str(details.get("Message", "")),
                int(status),
            ) from error
        except BotoCoreError as error:  # unreachable endpoint, timeouts
            raise DaxError.internal(f"DynamoDB did not answer: {error}") from error
        answer.pop("ResponseMetadata", None)
        return answer

    async def key_schema(self, table: str) -> KeySchema:
        """The table's key attributes and their types, from DescribeTable (cached a minute)."""
        cached = self._schemas.get(table)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        described = (await self.call("describe_table", TableName=table))["Table"]
        types = {a["AttributeName"]: a["AttributeType"] for a in described["AttributeDefinitions"]}
        ordered = sorted(described["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        schema = KeySchema(tuple((k["AttributeName"], types[k["AttributeName"]]) for k in ordered))
        self._schemas[table] = (now + _KEY_SCHEMA_TTL_SECONDS, schema)
        return schema
