#!/usr/bin/env bash
# Sets up the project if needed, then runs the whole local stack and the service in the
# foreground: PostgreSQL, a Kafka-protocol broker and a DynamoDB endpoint on loopback.
# Ctrl-C stops everything. Extra arguments go to `python -m uoom_orders_devstack` (e.g.
# --port 50052), from the tooling package: the service image has no local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh
exec python -m uoom_orders_devstack "$@"
