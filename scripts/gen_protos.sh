#!/usr/bin/env bash
# Regenerates the Python code of the contract into the client package.
# The generated files are committed; CI runs this and fails on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
out=clients/python/src
rm -rf "$out/uoom"
mkdir -p "$out"
python -m grpc_tools.protoc -I protos \
  --python_out="$out" --mypy_out="$out" \
  --grpc_python_out="$out" --mypy_grpc_out="$out" \
  $(find protos -name '*.proto' | sort)
# Make every generated folder a regular package so setuptools and mypy find them.
find "$out/uoom" -type d -exec touch {}/__init__.py \;
touch "$out/uoom/py.typed"
echo "generated into $out/uoom"
