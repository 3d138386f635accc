#!/usr/bin/env bash
# Regenerates the Python code beside each .proto. Needs the dev extra
# (grpcio-tools pinned exactly in setup.cfg): pip install -e '.[dev]'
# Usage: bash proto/regenerate.sh [OUTPUT_DIR]   (default: proto/; PYTHON picks the interpreter)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
cd "$here"
"${PYTHON:-python3}" -m grpc_tools.protoc -I . \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  tandemkv/v1/*.proto
