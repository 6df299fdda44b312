"""The deployment assets say what the design says: tables as the reference defines them, a
least-privilege policy (the same in the template and in deploy/iam-policy.json), and an image
whose health check speaks grpc.health.v1.

Linters (hadolint, cfn-lint, promtool) run from scripts/lint_deploy.sh; this file checks
meaning, which they cannot.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from uoom_orders.dynamodb import tables
from uoom_orders_devstack.dax_endpoint import DEPLOYED_ITEM_TTL_SECONDS, DEPLOYED_QUERY_TTL_SECONDS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
POLICY = ROOT / "deploy" / "iam-policy.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# --- the reference's tables ---------------------------------------------------------------
# From the reference write-up's "Order Status Table" definition (the details table has the
# same keys and indexes); projection ALL as in its create-table command.


def _gsi(name: str, hash_key: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": "updatedAt", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


REFERENCE_TABLE: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "orderId", "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": "orderId", "AttributeType": "S"},
        {"AttributeName": "customerId", "AttributeType": "S"},
        {"AttributeName": "restaurantId", "AttributeType": "S"},
        {"AttributeName": "updatedAt", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        _gsi("CustomerStatusIndex", "customerId"),
        _gsi("RestaurantStatusIndex", "restaurantId"),
    ],
    "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
}

# Exactly the calls the service makes (and nothing the reference granted beyond them).
SERVICE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:DescribeTable",
    "dax:GetItem",
    "dax:BatchGetItem",
    "dax:PutItem",
    "dax:Query",
}

# deploy/iam-policy.json's placeholders for the template's substitutions.
PLACEHOLDERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "TablePrefix": "uoom-prod-",
    "DaxCluster": "uoom-dax-prod",
}

# --- loading the template -----------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template() -> dict[str, Any]:
    # _CfnLoader is a SafeLoader: nothing but plain data and the intrinsic-function tags.
    template: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    return template


def resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in load_template()["Resources"].items()
        if resource["Type"] == kind
    }


def properties(name: str) -> dict[str, Any]:
    props: dict[str, Any] = load_template()["Resources"][name]["Properties"]
    return props


def render(value: Any) -> Any:
    """Resolves !Sub with the placeholders deploy/iam-policy.json uses."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        assert isinstance(value["Fn::Sub"], str)
        return re.sub(r"\$\{([^}]+)\}", lambda m: PLACEHOLDERS[m.group(1)], value["Fn::Sub"])
    if isinstance(value, list):
        return [render(item) for item in value]
    if isinstance(value, dict):
        return {key: render(item) for key, item in value.items()}
    return value


def normalized(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def as_set(value: str | list[str]) -> list[str]:
        return sorted([value] if isinstance(value, str) else value)

    return sorted(
        (
            {
                "Sid": s.get("Sid"),
                "Effect": s["Effect"],
                "Action": as_set(s["Action"]),
                "Resource": as_set(s["Resource"]),
            }
            for s in statements
        ),
        key=lambda s: str(s["Sid"]),
    )


def actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in normalized(statements) for action in s["Action"]}


# --- tables -------------------------------------------------------------------------------


def _comparable(table: dict[str, Any]) -> dict[str, Any]:
    return {
        **{key: table.get(key) for key in REFERENCE_TABLE},
        "AttributeDefinitions": sorted(
            table["AttributeDefinitions"], key=lambda a: str(a["AttributeName"])
        ),
        "GlobalSecondaryIndexes": sorted(
            table["GlobalSecondaryIndexes"], key=lambda i: str(i["IndexName"])
        ),
    }


@pytest.mark.parametrize(
    ("resource", "name"),
    [("OrderStatusTable", "order-status"), ("OrderDetailsTable", "order-details")],
)
def test_table_is_the_references(resource: str, name: str) -> None:
    table = properties(resource)
    assert table["TableName"] == {"Fn::Sub": f"${{TablePrefix}}{name}"}
    assert _comparable(table) == _comparable(REFERENCE_TABLE)
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "ProvisionedThroughput" not in table
    assert "LocalSecondaryIndexes" not in table


@pytest.mark.parametrize(
    ("resource", "name"),
    [("OrderStatusTable", "order-status"), ("OrderDetailsTable", "order-details")],
)
def test_table_is_what_the_code_creates(resource: str, name: str) -> None:
    # The service's own create-tables (local stacks, tests) and the deploy must not drift.
    created = tables.create_table_kwargs(f"uoom-prod-{name}")
    ttl = tables.time_to_live_kwargs(f"uoom-prod-{name}")["TimeToLiveSpecification"]
    stream = created["StreamSpecification"]
    assert stream.get("StreamEnabled", True) is True
    code_table = {
        **created,
        "StreamSpecification": {"StreamViewType": stream["StreamViewType"]},
        "TimeToLiveSpecification": ttl,
    }
    assert _comparable(properties(resource)) == _comparable(code_table)
    assert render(properties(resource)["TableName"]) == created["TableName"]


def test_only_the_two_tables() -> None:
    assert set(resources_of_type("AWS::DynamoDB::Table")) == {
        "OrderStatusTable",
        "OrderDetailsTable",
    }


# --- IAM ----------------------------------------------------------------------------------


def test_service_policy_grants_exactly_the_calls_the_service_makes() -> None:
    statements = render(properties("ServicePolicy")["PolicyDocument"])["Statement"]
    assert actions(statements) == SERVICE_ACTIONS
    assert all(s["Effect"] == "Allow" for s in statements)


def test_standalone_policy_equals_the_templates() -> None:
    standalone = json.loads(POLICY.read_text())
    template = render(properties("ServicePolicy")["PolicyDocument"])
    assert standalone["Version"] == template["Version"] == "2012-10-17"
    assert normalized(standalone["Statement"]) == normalized(template["Statement"])
    assert actions(standalone["Statement"]) == SERVICE_ACTIONS


def test_policy_has_no_wildcards_beyond_indexes() -> None:
    for statement in json.loads(POLICY.read_text())["Statement"]:
        for action in normalized([statement])[0]["Action"]:
            assert "*" not in action
        for resource in normalized([statement])[0]["Resource"]:
            assert "*" not in resource or resource.endswith("/index/*"), resource
            assert ":table/" in resource or ":cache/" in resource, resource


def test_service_role_uses_the_policy_and_nothing_else() -> None:
    role = properties("ServiceRole")
    assert role["ManagedPolicyArns"] == [{"Ref": "ServicePolicy"}]
    assert "Policies" not in role


def test_dax_role_reaches_only_the_tables() -> None:
    role = properties("DaxServiceRole")
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "dax.amazonaws.com"}]
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert {a.split(":")[1] for a in statement["Action"]} <= {
        a.split(":")[1] for a in SERVICE_ACTIONS
    }
    assert all(a.startswith("dynamodb:") for a in statement["Action"])


# --- DAX ----------------------------------------------------------------------------------


def test_dax_cluster_encrypted_and_tuned() -> None:
    template = load_template()
    cluster = properties("DaxCluster")
    assert cluster["SSESpecification"] == {"SSEEnabled": True}
    assert cluster["ClusterEndpointEncryptionType"] == "TLS"
    assert cluster["NodeType"] == {"Ref": "DaxNodeType"}
    assert cluster["ReplicationFactor"] == {"Ref": "DaxNodeCount"}
    assert template["Parameters"]["DaxNodeType"]["Default"] == "dax.t3.small"
    assert properties("DaxParameterGroup")["ParameterNameValues"] == {
        "record-ttl-millis": {"Ref": "DaxItemTtlMillis"},
        "query-ttl-millis": {"Ref": "DaxQueryTtlMillis"},
    }
    assert template["Outputs"]["DaxEndpoint"]["Value"] == {
        "Fn::GetAtt": ["DaxCluster", "ClusterDiscoveryEndpointURL"]
    }


def test_the_local_dax_endpoint_caches_as_long_as_the_deployed_cluster() -> None:
    """`dev` is as stale as production: its DAX-protocol endpoint takes the template's TTLs."""
    parameters = load_template()["Parameters"]
    assert parameters["DaxItemTtlMillis"]["Default"] == DEPLOYED_ITEM_TTL_SECONDS * 1000
    assert parameters["DaxQueryTtlMillis"]["Default"] == DEPLOYED_QUERY_TTL_SECONDS * 1000


def test_dax_reachable_only_from_the_service_over_tls() -> None:
    (rule,) = properties("DaxSecurityGroup")["SecurityGroupIngress"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 9111, 9111)
    assert rule["SourceSecurityGroupId"] == {"Ref": "ServiceSecurityGroup"}
    assert "CidrIp" not in rule


# --- alarms -------------------------------------------------------------------------------


def _alarms() -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources_of_type("AWS::CloudWatch::Alarm").values()]


def _dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def test_latency_alarms_match_the_reference() -> None:
    latency = [a for a in _alarms() if a.get("MetricName") == "SuccessfulRequestLatency"]
    covered = {(_dimensions(a)["TableName"]["Ref"], _dimensions(a)["Operation"]) for a in latency}
    assert covered == {
        (table, operation)
        for table in ("OrderStatusTable", "OrderDetailsTable")
        for operation in ("GetItem", "Query")
    }
    for alarm in latency:
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (10, "GreaterThanThreshold")


def test_throttle_alarms_match_the_reference() -> None:
    throttle = [
        a
        for a in _alarms()
        if any(
            m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "ThrottledRequests"
            for m in a.get("Metrics", [])
        )
    ]
    assert len(throttle) == 2
    for alarm in throttle:
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        operations = {
            d["Value"]
            for m in alarm["Metrics"]
            if "MetricStat" in m
            for d in m["MetricStat"]["Metric"]["Dimensions"]
            if d["Name"] == "Operation"
        }
        assert operations == {"GetItem", "BatchGetItem", "PutItem", "Query"}


def test_dax_cpu_alarm() -> None:
    (alarm,) = [a for a in _alarms() if a.get("MetricName") == "CPUUtilization"]
    assert alarm["Namespace"] == "AWS/DAX"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (70, "GreaterThanThreshold")
    assert _dimensions(alarm) == {"ClusterId": {"Ref": "DaxCluster"}}


def test_outputs() -> None:
    assert {
        "OrderStatusTableName",
        "OrderDetailsTableName",
        "DaxEndpoint",
        "ServiceRoleArn",
    } <= set(load_template()["Outputs"])


# --- the image ----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def healthcheck_code() -> str:
    (check,) = [args for op, args in _final_stage() if op == "HEALTHCHECK"]
    exec_form = json.loads(check[check.index("CMD") + 3 :].strip())
    assert exec_form[:2] == ["python", "-c"]
    code: str = exec_form[2]
    return code


def test_image_runs_the_service_as_a_fixed_non_root_user() -> None:
    stage = dict(_final_stage())
    assert stage["FROM"] == "python:3.11-slim-bookworm"
    assert stage["USER"] == "10001:10001"
    assert stage["ENTRYPOINT"] == '["uoom-orders"]'
    assert stage["CMD"] == '["serve"]'
    assert set(stage["EXPOSE"].split()) == {"50051", "9464"}
    copies = [args for op, args in _final_stage() if op == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_image_installs_no_extras() -> None:
    text = DOCKERFILE.read_text()
    assert "[dev" not in text
    assert "[test" not in text


def test_image_build_copies_only_the_service_and_its_client() -> None:
    """Not tooling/ (local stack, benchmark, fault injection): the image is the service."""
    sources = [
        source
        for op, args in _instructions()
        if op == "COPY" and not args.startswith("--from=")
        for source in args.split()[:-1]
    ]
    assert sorted(sources) == ["clients/python/", "pyproject.toml", "server/"]


def test_dockerignore_keeps_the_context_to_the_packages() -> None:
    lines = DOCKERIGNORE.read_text().split()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!server/", "!clients/python/"]


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[int, health.aio.HealthServicer]]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, servicer
    finally:
        await server.stop(None)


async def _healthcheck(port: int) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        healthcheck_code(),
        env={**os.environ, "GRPC_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_healthcheck_follows_the_health_service(
    health_server: tuple[int, health.aio.HealthServicer],
) -> None:
    port, servicer = health_server
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert await _healthcheck(port) == 0
    await servicer.enter_graceful_shutdown()
    assert await _healthcheck(port) == 1


async def test_healthcheck_fails_when_nothing_listens() -> None:
    # A bound socket that never listens: connections are refused, and no one else takes it.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        assert await _healthcheck(reserved.getsockname()[1]) == 1
