#!/usr/bin/env bash
# Set up (idempotent), then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check saladpipe tests bench
.venv/bin/ruff format --check saladpipe tests bench
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
