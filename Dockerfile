# syntax=docker/dockerfile:1
# Order status service image: `uoom-orders serve` (gRPC on 50051, Prometheus on 9464).
# Other subcommands run the same image: `docker run IMAGE migrate`.

# ---- builder: wheels for the two local packages, then a venv with them and their deps ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The generated code + typed client first: it changes less often than the server.
COPY clients/python/ clients/python/
COPY pyproject.toml ./
COPY server/ server/

# Naming the client wheel by file makes pip take it from here, never from an index
# (uoom-orders depends on "uoom-orders-client" by name). No dev/test extras.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ./clients/python . \
 && pip install --no-cache-dir /wheels/uoom_orders_client-*.whl /wheels/uoom_orders-*.whl \
 && uoom-orders --help > /dev/null

# ---- runtime: the venv only, a non-root user, no build tools ----
FROM python:3.11-slim-bookworm

RUN groupadd --system --gid 10001 uoom \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin uoom

COPY --from=builder /opt/venv /opt/venv

# GRPC_PORT: the gRPC port (config.py). METRICS_PORT: the Prometheus endpoint (both EXPOSEd).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRPC_PORT=50051 \
    METRICS_PORT=9464

USER 10001:10001

EXPOSE 50051 9464

# grpc.health.v1 Check on the overall service (""), with the grpcio-health-checking the
# service already depends on: no probe binary to download.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c = grpc.insecure_channel('127.0.0.1:' + os.environ.get('GRPC_PORT', '50051')); r = g.HealthStub(c).Check(h.HealthCheckRequest(service=''), timeout=3); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]

ENTRYPOINT ["uoom-orders"]
CMD ["serve"]
