"""Local stack launcher: real PostgreSQL, Kafka-protocol, DynamoDB and DAX-protocol servers on
loopback."""

from __future__ import annotations

from uoom_orders_devstack.dax_endpoint import DaxEndpointServer
from uoom_orders_devstack.dynamodb_admin import DynamoDBAdmin
from uoom_orders_devstack.dynamodb_endpoint import MotoDynamoDBServer
from uoom_orders_devstack.kafka_broker import TansuBroker
from uoom_orders_devstack.postgres import PostgresServer
from uoom_orders_devstack.processes import LocalServer, StackStartError
from uoom_orders_devstack.stack import LocalStack, StackEndpoints, admin_url_for

__all__ = [
    "DaxEndpointServer",
    "DynamoDBAdmin",
    "LocalServer",
    "LocalStack",
    "MotoDynamoDBServer",
    "PostgresServer",
    "StackEndpoints",
    "StackStartError",
    "TansuBroker",
    "admin_url_for",
]
