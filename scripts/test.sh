#!/usr/bin/env bash
# Every check CI runs, in order: lint, format, types, contract lint, generated-code drift, tests.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not e2e"`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "ruff check"
ruff check .
step "ruff format --check"
ruff format --check .
step "mypy"
mypy

step "buf lint"
buf=""
for candidate in "$(command -v buf || true)" .tmp/buf/node_modules/.bin/buf .tmp/node_modules/.bin/buf; do
  if [[ -n "$candidate" && -x "$candidate" ]]; then buf=$candidate; break; fi
done
if [[ -n "$buf" ]]; then
  "$buf" lint
  # Breaking-change check (FILE rules) against the previous commit, when there is one.
  if git rev-parse --verify --quiet HEAD~1 >/dev/null; then
    step "buf breaking against HEAD~1"
    "$buf" breaking --against ".git#ref=HEAD~1"
  fi
else
  echo "buf not found (PATH, .tmp/buf/node_modules/.bin): skipped; .ci/run installs it" >&2
fi

step "deployment assets (hadolint, cfn-lint, promtool)"
bash scripts/lint_deploy.sh

step "generated code is up to date"
bash scripts/gen_protos.sh
# Only the generated folder: the hand-written client next to it is not regenerated.
generated=clients/python/src/uoom
if ! git diff --exit-code --stat -- "$generated" || [[ -n "$(git status --porcelain -- "$generated")" ]]; then
  git status --short -- "$generated"
  echo "generated code differs from the committed code: run scripts/gen_protos.sh and commit" >&2
  exit 1
fi

step "pytest"
pytest -q "$@"
