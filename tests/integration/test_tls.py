"""TLS and mutual TLS on the gRPC port, with a CA made here; the client package and grpcurl."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.builders import create_request
from tests.e2e.test_service_process import grpcurl_binary
from tests.support.certificates import Pki, make_pki
from uoom_orders.bootstrap import RunningService, running_service
from uoom_orders.config import ConfigError, Settings
from uoom_orders_client import (
    NotFoundError,
    OrderServiceClient,
    UnavailableError,
    order_service_pb2,
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
async def mtls_service(database_url: str, pki: Pki) -> AsyncIterator[RunningService]:
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": "0",
            "READ_TIERS": "none",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "GRPC_TLS_CERT_FILE": str(pki.server.cert),
            "GRPC_TLS_KEY_FILE": str(pki.server.key),
            "GRPC_TLS_CLIENT_CA_FILE": str(pki.ca.cert),
        }
    )
    async with running_service(settings) as service:
        yield service


async def test_a_client_with_a_certificate_of_the_ca_is_served(
    mtls_service: RunningService, pki: Pki
) -> None:
    async with OrderServiceClient(
        f"localhost:{mtls_service.port}",
        root_certificates=pki.ca.cert_bytes(),
        private_key=pki.client.key_bytes(),
        certificate_chain=pki.client.cert_bytes(),
    ) as client:
        created = await client.create_order(create_request())
        with pytest.raises(NotFoundError):
            await client.get_order_status(
                order_service_pb2.GetOrderStatusRequest(order_id=str(uuid.uuid4()))
            )
        assert created.order.version == 1


async def test_clients_without_a_good_certificate_are_refused(
    mtls_service: RunningService, pki: Pki, tmp_path: Path
) -> None:
    stranger = make_pki(tmp_path / "other", ca_name="someone else's CA")
    target = f"localhost:{mtls_service.port}"
    attempts: list[dict[str, bytes]] = [
        {"root_certificates": pki.ca.cert_bytes()},  # no client certificate
        {  # a client certificate from another CA
            "root_certificates": pki.ca.cert_bytes(),
            "private_key": stranger.client.key_bytes(),
            "certificate_chain": stranger.client.cert_bytes(),
        },
    ]
    for options in attempts:
        async with OrderServiceClient(
            target,
            default_timeout=3,
            max_attempts=1,
            root_certificates=options.get("root_certificates"),
            private_key=options.get("private_key"),
            certificate_chain=options.get("certificate_chain"),
        ) as client:
            with pytest.raises(UnavailableError):
                await client.create_order(create_request())
    async with OrderServiceClient(target, default_timeout=3, max_attempts=1) as plaintext:
        with pytest.raises(UnavailableError):
            await plaintext.create_order(create_request())


async def test_grpcurl_over_mutual_tls(mtls_service: RunningService, pki: Pki) -> None:
    # A subprocess of its own: the service answers from this test's event loop.
    process = await asyncio.create_subprocess_exec(
            grpcurl_binary(),
            "-cacert", str(pki.ca.cert),
            "-cert", str(pki.client.cert),
            "-key", str(pki.client.key),
            f"localhost:{mtls_service.port}",
            "grpc.health.v1.Health/Check",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout)["status"] == "SERVING"


def test_tls_settings_are_checked_at_start(pki: Pki, tmp_path: Path) -> None:
    base = {"DATABASE_URL": "postgresql://u@localhost/db"}
    with pytest.raises(ConfigError, match="GRPC_TLS_KEY_FILE"):
        Settings.from_env(base | {"GRPC_TLS_CERT_FILE": str(pki.server.cert)})
    with pytest.raises(ConfigError, match="GRPC_TLS_CERT_FILE"):
        Settings.from_env(base | {"GRPC_TLS_CERT_FILE": str(tmp_path / "missing.crt")})
