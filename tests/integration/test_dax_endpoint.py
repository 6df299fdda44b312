"""The DAX-protocol endpoint (tooling/uoom_orders_dax) under the real amazon-dax-client,
forwarding to a DynamoDB endpoint (moto_server): what the client reads, and the staleness
DAX's caches give a real cluster."""

from __future__ import annotations

import io
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import cbor2
import pytest
from amazondax.DaxError import DaxClientError, DaxServiceError

from tests.support.dax_endpoint import (
    REGION,
    dax_client,
    dax_endpoint,
    dynamodb_client,
    moto_dynamodb,
)
from uoom_orders_dax import DaxEndpoint

INDEX = "CustomerStatusIndex"
# A call that does not come back within this is a hang: the client would wait 60 s.
PROMPT_SECONDS = 5.0


@pytest.fixture(scope="module")
def dynamodb_url() -> Iterator[str]:
    with moto_dynamodb() as url:
        yield url


@pytest.fixture(scope="module")
def ddb(dynamodb_url: str) -> Iterator[Any]:
    client = dynamodb_client(dynamodb_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def dax(dynamodb_url: str) -> Iterator[DaxEndpoint]:
    with dax_endpoint(dynamodb_url) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def client(dax: DaxEndpoint) -> Iterator[Any]:
    dax_reader = dax_client(dax.endpoint)
    yield dax_reader
    dax_reader.close()


def _create_table(ddb: Any) -> str:
    name = f"dax-{uuid.uuid4().hex[:12]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"}
            for n in ("orderId", "customerId", "updatedAt")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "customerId", "KeyType": "HASH"},
                    {"AttributeName": "updatedAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def tables(ddb: Any) -> Iterator[tuple[str, str]]:
    names = (_create_table(ddb), _create_table(ddb))
    yield names
    for name in names:
        ddb.delete_table(TableName=name)


def order(
    order_id: str | None = None,
    *,
    customer: str = "c-1",
    at: str = "2026-03-01T12:00:00.000000Z",
    status: str = "PENDING",
    version: int = 1,
) -> dict[str, Any]:
    return {
        "orderId": {"S": order_id or str(uuid.uuid4())},
        "customerId": {"S": customer},
        "updatedAt": {"S": at},
        "status": {"S": status},
        "version": {"N": str(version)},
        "totalAmountMinor": {"N": "1250"},
        "items": {"L": [{"M": {"name": {"S": "soup"}, "quantity": {"N": "2"}}}]},
        "tags": {"SS": ["hot", "vegan"]},
        "note": {"NULL": True},
        "paid": {"BOOL": False},
        "raw": {"B": b"\x00\x01"},
    }


def key(item: dict[str, Any]) -> dict[str, Any]:
    return {"orderId": item["orderId"]}


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- reads ---------------------------------------------------------------------------------


def test_get_item_answers_what_dynamodb_holds_and_nothing_for_a_missing_key(
    ddb: Any, client: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    item = order()
    ddb.put_item(TableName=table, Item=item)
    assert client.get_item(TableName=table, Key=key(item)) == {"Item": item}
    assert client.get_item(TableName=table, Key={"orderId": {"S": "absent"}}) == {}
    projected = client.get_item(
        TableName=table,
        Key=key(item),
        ProjectionExpression="#s, items[0].#n",
        ExpressionAttributeNames={"#s": "status", "#n": "name"},
    )
    assert projected == {
        "Item": {"status": item["status"], "items": {"L": [{"M": {"name": {"S": "soup"}}}]}}
    }


def test_batch_get_item_spans_tables_and_leaves_out_missing_keys(
    ddb: Any, client: Any, tables: tuple[str, str]
) -> None:
    status, details = tables
    first, second, third = order(), order(), order()
    for item in (first, second):
        ddb.put_item(TableName=status, Item=item)
    ddb.put_item(TableName=details, Item=third)
    # The client refuses the same key in two tables of one batch (it checks duplicates
    # across the whole request), so each table asks for keys of its own.
    reply = client.batch_get_item(
        RequestItems={
            status: {"Keys": [key(first), key(second), {"orderId": {"S": "absent"}}]},
            details: {"Keys": [key(third), {"orderId": {"S": "absent-too"}}]},
        }
    )
    by_id = {t: {i["orderId"]["S"]: i for i in items} for t, items in reply["Responses"].items()}
    assert by_id == {
        status: {first["orderId"]["S"]: first, second["orderId"]["S"]: second},
        details: {third["orderId"]["S"]: third},
    }
    assert reply["UnprocessedKeys"] == {}


def test_query_on_a_gsi_runs_newest_first_with_limit_and_start_key(
    ddb: Any, client: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    customer = f"c-{uuid.uuid4().hex[:8]}"
    orders = [order(customer=customer, at=f"2026-03-01T12:00:0{i}.000000Z") for i in range(5)]
    for item in orders:
        ddb.put_item(TableName=table, Item=item)
    ddb.put_item(TableName=table, Item=order(customer="someone-else"))
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": INDEX,
        "KeyConditionExpression": "#c = :c AND #u <= :before",
        "FilterExpression": "attribute_not_exists(#ttl) OR #ttl >= :now",
        "ExpressionAttributeNames": {"#c": "customerId", "#u": "updatedAt", "#ttl": "ttl"},
        "ExpressionAttributeValues": {
            ":c": {"S": customer},
            ":before": {"S": "2026-03-01T12:00:03.000000Z"},
            ":now": {"N": "0"},
        },
        "ScanIndexForward": False,
        "Limit": 2,
    }
    first = client.query(**request)
    assert [i["orderId"] for i in first["Items"]] == [orders[3]["orderId"], orders[2]["orderId"]]
    assert first["Items"][0] == orders[3]
    expected_first = ddb.query(**request)
    assert first["LastEvaluatedKey"] == expected_first["LastEvaluatedKey"]
    assert first["Count"] == expected_first["Count"] == 2

    rest = client.query(**request, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert [i["orderId"] for i in rest["Items"]] == [orders[1]["orderId"], orders[0]["orderId"]]
    count = client.query(**{**request, "Select": "COUNT", "Limit": 10})
    assert count["Count"] == 4
    assert "Items" not in count


def test_a_numeric_range_key_travels_in_its_sortable_form(ddb: Any, client: Any) -> None:
    table = f"dax-{uuid.uuid4().hex[:12]}"
    ddb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "orderId", "KeyType": "HASH"},
            {"AttributeName": "seq", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "orderId", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        events = [
            {"orderId": {"S": "o"}, "seq": {"N": n}, "what": {"S": f"event {n}"}}
            for n in ("-2.5", "0", "3", "1000000", "12.75")
        ]
        for event in events:
            ddb.put_item(TableName=table, Item=event)
        wanted = {"orderId": {"S": "o"}, "seq": {"N": "12.75"}}
        assert client.get_item(TableName=table, Key=wanted)["Item"] == events[4]
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "orderId = :o AND seq > :low",
            "ExpressionAttributeValues": {":o": {"S": "o"}, ":low": {"N": "-10"}},
            "ScanIndexForward": False,
            "Limit": 3,
        }
        page = client.query(**request)
        assert [i["seq"]["N"] for i in page["Items"]] == ["1000000", "12.75", "3"]
        assert page["LastEvaluatedKey"] == ddb.query(**request)["LastEvaluatedKey"]
        rest = client.query(**request, ExclusiveStartKey=page["LastEvaluatedKey"])
        assert [i["seq"]["N"] for i in rest["Items"]] == ["0", "-2.5"]
        batch = client.batch_get_item(RequestItems={table: {"Keys": [wanted, key_of(events[0])]}})
        assert sorted(i["seq"]["N"] for i in batch["Responses"][table]) == ["-2.5", "12.75"]
    finally:
        ddb.delete_table(TableName=table)


def key_of(event: dict[str, Any]) -> dict[str, Any]:
    return {"orderId": event["orderId"], "seq": event["seq"]}


# --- the caches ----------------------------------------------------------------------------


def test_a_write_straight_to_dynamodb_is_not_seen_while_the_item_is_cached(
    ddb: Any, client: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    old = order(version=1)
    ddb.put_item(TableName=table, Item=old)
    assert client.get_item(TableName=table, Key=key(old))["Item"] == old
    new = {**old, "status": {"S": "CONFIRMED"}, "version": {"N": "2"}}
    ddb.put_item(TableName=table, Item=new)

    assert client.get_item(TableName=table, Key=key(old))["Item"] == old  # stale, as in DAX
    batch = client.batch_get_item(RequestItems={table: {"Keys": [key(old)]}})
    assert batch["Responses"][table] == [old]
    # A strongly consistent read goes through to DynamoDB.
    assert client.get_item(TableName=table, Key=key(old), ConsistentRead=True)["Item"] == new

    absent = order()
    assert client.get_item(TableName=table, Key=key(absent)) == {}
    ddb.put_item(TableName=table, Item=absent)
    assert client.get_item(TableName=table, Key=key(absent)) == {}  # a cached absence too


def test_writes_through_dax_update_the_item_cache(
    ddb: Any, client: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    item = order(version=1)
    ddb.put_item(TableName=table, Item=item)
    assert client.get_item(TableName=table, Key=key(item))["Item"] == item

    confirmed = {**item, "status": {"S": "CONFIRMED"}, "version": {"N": "2"}}
    client.put_item(
        TableName=table,
        Item=confirmed,
        ConditionExpression="#v < :v",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":v": {"N": "2"}},
    )
    assert client.get_item(TableName=table, Key=key(item))["Item"] == confirmed
    assert ddb.get_item(TableName=table, Key=key(item), ConsistentRead=True)["Item"] == confirmed

    updated = client.update_item(
        TableName=table,
        Key=key(item),
        UpdateExpression="SET #s = :s, #v = #v + :one REMOVE note",
        ExpressionAttributeNames={"#s": "status", "#v": "version"},
        ExpressionAttributeValues={":s": {"S": "PREPARING"}, ":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    assert updated["Attributes"] == {"status": {"S": "PREPARING"}, "version": {"N": "3"}}
    cached = client.get_item(TableName=table, Key=key(item))["Item"]
    assert cached["status"] == {"S": "PREPARING"}
    assert "note" not in cached

    with pytest.raises(DaxServiceError) as failed:
        client.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="#v < :v",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":v": {"N": "1"}},
        )
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"

    old = client.delete_item(TableName=table, Key=key(item), ReturnValues="ALL_OLD")
    assert old["Attributes"]["version"] == {"N": "3"}
    assert client.get_item(TableName=table, Key=key(item)) == {}


def test_the_query_cache_is_not_invalidated_by_item_writes(
    ddb: Any, client: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    customer = f"c-{uuid.uuid4().hex[:8]}"
    item = order(customer=customer)
    ddb.put_item(TableName=table, Item=item)
    request = {
        "TableName": table,
        "IndexName": INDEX,
        "KeyConditionExpression": "customerId = :c",
        "ExpressionAttributeValues": {":c": {"S": customer}},
        "ScanIndexForward": False,
    }
    assert client.query(**request)["Items"] == [item]

    cancelled = {**item, "status": {"S": "CANCELLED"}, "version": {"N": "2"}}
    client.put_item(TableName=table, Item=cancelled)  # through DAX, and still:
    assert client.get_item(TableName=table, Key=key(item))["Item"] == cancelled
    assert client.query(**request)["Items"] == [item]
    client.delete_item(TableName=table, Key=key(item))
    assert client.query(**request)["Items"] == [item]
    assert ddb.query(**request)["Items"] == []


def test_entries_expire_after_their_ttl(ddb: Any, dynamodb_url: str) -> None:
    table = _create_table(ddb)
    try:
        # Long enough for the calls below to fall within it on a loaded machine.
        with dax_endpoint(dynamodb_url, item_ttl_seconds=4.0, query_ttl_seconds=4.0) as short:
            reader = dax_client(short.endpoint)
            try:
                item = order(customer="ttl")
                ddb.put_item(TableName=table, Item=item)
                query = {
                    "TableName": table,
                    "IndexName": INDEX,
                    "KeyConditionExpression": "customerId = :c",
                    "ExpressionAttributeValues": {":c": {"S": "ttl"}},
                }
                assert reader.get_item(TableName=table, Key=key(item))["Item"] == item
                assert reader.query(**query)["Count"] == 1
                newer = {**item, "version": {"N": "2"}}
                ddb.put_item(TableName=table, Item=newer)
                ddb.put_item(TableName=table, Item=order(customer="ttl"))
                assert reader.get_item(TableName=table, Key=key(item))["Item"] == item
                assert reader.query(**query)["Count"] == 1
                # Both entries expire: the endpoint reads through again.
                deadline = time.monotonic() + 15
                while not (
                    reader.get_item(TableName=table, Key=key(item))["Item"] == newer
                    and reader.query(**query)["Count"] == 2
                ):
                    assert time.monotonic() < deadline, "the entries never expired"
                    time.sleep(0.2)
            finally:
                reader.close()
    finally:
        ddb.delete_table(TableName=table)


# --- protocol: errors, discovery, authorisation, restarts ----------------------------------


def test_an_unsupported_method_is_answered_with_an_error_not_a_hang(
    client: Any, tables: tuple[str, str]
) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: client.scan(TableName=tables[0]),
        lambda: client.transact_get_items(
            TransactItems=[{"Get": {"TableName": tables[0], "Key": {"orderId": {"S": "x"}}}}]
        ),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(DaxServiceError) as failed:
            call()
        assert failed.value.response["Error"]["Code"] == "UnknownOperationException"
        assert time.monotonic() - started < PROMPT_SECONDS
    with pytest.raises(DaxServiceError) as missing:
        client.get_item(TableName="no-such-table", Key={"orderId": {"S": "x"}})
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


PREAMBLE = b"gJ7yne5G" + b"".join(cbor2.dumps(v) for v in (0, None, {"UserAgent": "test"}, 0))
AUTHORIZE = b"".join(
    cbor2.dumps(v)
    for v in (1, 1489122155, "AKID", "deadbeef", b"AWS4-HMAC-SHA256\n20260301T000000Z", None, None)
)
ENDPOINTS = cbor2.dumps(1) + cbor2.dumps(455855874)


def exchange(port: int, requests: bytes) -> list[Any]:
    """Sends raw requests, half-closes, and decodes every CBOR item the endpoint answers
    before it closes; a hang fails on the socket timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPT_SECONDS) as sock:
        sock.sendall(PREAMBLE + requests)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    stream = io.BytesIO(data)
    items = []
    while stream.tell() < len(data):
        items.append(cbor2.load(stream))
    return items


def test_discovery_answers_every_node_and_the_client_finds_them_from_any(
    dynamodb_url: str, ddb: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    item = order()
    with dax_endpoint(dynamodb_url, nodes=3) as cluster:
        ports = [node.port for node in cluster.nodes]
        success, roster = exchange(ports[1], AUTHORIZE + ENDPOINTS)
        assert success == []
        assert [(n[2], n[3], n[4]) for n in roster] == [
            (socket.inet_aton("127.0.0.1"), port, 1 if i == 0 else 2)
            for i, port in enumerate(ports)
        ]
        # Given a replica's address, the client discovers the leader and writes through it.
        reader = dax_client(f"dax://127.0.0.1:{ports[2]}")
        try:
            reader.put_item(TableName=table, Item=item)
            for _ in range(6):  # reads go to random nodes; the caches are shared
                assert reader.get_item(TableName=table, Key=key(item))["Item"] == item
        finally:
            reader.close()


def test_requests_before_authorisation_and_unknown_methods_get_errors(dax: DaxEndpoint) -> None:
    codes, message, details = exchange(dax.port, ENDPOINTS)
    assert codes[:3] == [4, 23, 31]  # what the client counts as an authentication failure
    assert details[1] == "MissingAuthenticationTokenException"
    # An unknown method cannot be skipped (its arguments have no framing): error, then close.
    codes, message, details = exchange(dax.port, AUTHORIZE + cbor2.dumps(1) + cbor2.dumps(42))
    assert codes[0] == 3
    assert "not supported" in message


def test_the_client_reconnects_to_an_endpoint_restarted_on_its_port(
    dynamodb_url: str, ddb: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    item = order()
    ddb.put_item(TableName=table, Item=item)
    endpoint = dax_endpoint(dynamodb_url).start()
    reader = dax_client(endpoint.endpoint)
    try:
        port = endpoint.port
        assert reader.get_item(TableName=table, Key=key(item))["Item"] == item
        endpoint.stop()
        with pytest.raises((DaxClientError, DaxServiceError, OSError)):
            reader.get_item(TableName=table, Key=key(item))
        endpoint.start()
        assert endpoint.port == port

        def reads() -> bool:
            try:
                return bool(reader.get_item(TableName=table, Key=key(item))["Item"] == item)
            except (DaxClientError, DaxServiceError, OSError):
                return False

        eventually(reads, "a read through the restarted endpoint")
    finally:
        reader.close()
        endpoint.stop()


def test_the_command_prints_where_it_listens_and_stops_on_sigterm(
    dynamodb_url: str, ddb: Any, tables: tuple[str, str]
) -> None:
    table = tables[0]
    item = order()
    ddb.put_item(TableName=table, Item=item)
    command = [sys.executable, "-m", "uoom_orders_dax", "--dynamodb-endpoint", dynamodb_url]
    process = subprocess.Popen(
        [*command, "--item-ttl-seconds", "1", "--region", REGION], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the command printed no address"
        address = process.stdout.readline().strip()
        assert address.startswith("dax://127.0.0.1:")
        reader = dax_client(address)
        try:
            assert reader.get_item(TableName=table, Key=key(item))["Item"] == item
        finally:
            reader.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
