#!/usr/bin/env bash
# Installs what the project needs on a fresh machine (Debian as root, Python 3.11,
# Node/npm): PostgreSQL server binaries, the .venv with the project and its test tools, and buf
# (best effort: promtool, headless Chromium).
# Idempotent and quick when everything is already there. Caches stay in the ignored .tmp/.
# Meant to be sourced by scripts/dev.sh and scripts/test.sh: it leaves the venv activated and
# buf on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
mkdir -p .tmp

export PIP_CACHE_DIR="$root/.tmp/pip-cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export npm_config_cache="$root/.tmp/npm-cache"
export npm_config_update_notifier=false
export XDG_CACHE_HOME="$root/.tmp/cache"

step() { printf '\n==> %s\n' "$*"; }

# PostgreSQL server binaries (initdb, postgres) for the local stack.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  step "installing PostgreSQL server binaries"
  if [[ $(id -u) -ne 0 ]]; then
    echo "PostgreSQL server binaries missing and not root: install the postgresql package" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi

# promtool checks the Prometheus alert rules; best effort: without it those checks are skipped.
if ! command -v promtool >/dev/null && [[ $(id -u) -eq 0 ]]; then
  step "installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; } \
    || echo "promtool could not be installed: alert rules will not be linted by promtool" >&2
fi

# Headless Chromium loads dynamodb-admin's page in a test (python -m uoom_orders_devstack
# --dynamodb-admin); best effort: without it that test is skipped, saying why.
if ! command -v chromium >/dev/null && [[ $(id -u) -eq 0 ]]; then
  step "installing headless Chromium (Debian packages chromium, chromium-driver)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; } \
    || echo "chromium could not be installed: the dynamodb-admin page test will be skipped" >&2
fi

# Python environment.
python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  step "creating .venv with $($python --version)"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Python 3.11 or newer needed, found $($python --version)" >&2; exit 1; }
  "$python" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# Reinstall only when the package definitions changed since the last install.
stamp=.venv/.uoom-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp || clients/python/pyproject.toml -nt $stamp \
      || tooling/pyproject.toml -nt $stamp ]]; then
  step "installing the project"
  python -m pip install --quiet -e clients/python -e '.[test]' -e tooling
  touch "$stamp"
fi

# buf, from npm (its remote plugins are not used: code is generated with grpcio-tools).
buf_version=${BUF_VERSION:-1.75.0}
if [[ ! -x .tmp/buf/node_modules/.bin/buf ]]; then
  step "installing buf $buf_version"
  npm install --prefix .tmp/buf --no-audit --no-fund "@bufbuild/buf@$buf_version"
fi
export PATH="$root/.tmp/buf/node_modules/.bin:$PATH"

