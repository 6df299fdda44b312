"""Local stack launcher: real PostgreSQL, Kafka-protocol and DynamoDB servers on loopback."""

from __future__ import annotations

from uoom_orders.devstack.dynamodb_endpoint import MotoDynamoDBServer
from uoom_orders.devstack.kafka_broker import TansuBroker
from uoom_orders.devstack.postgres import PostgresServer
from uoom_orders.devstack.processes import LocalServer, StackStartError
from uoom_orders.devstack.stack import LocalStack, StackEndpoints, admin_url_for

__all__ = [
    "LocalServer",
    "LocalStack",
    "MotoDynamoDBServer",
    "PostgresServer",
    "StackEndpoints",
    "StackStartError",
    "TansuBroker",
    "admin_url_for",
]
