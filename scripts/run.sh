#!/usr/bin/env bash
# Set up (idempotent) and run the main job: `saladpipe run` on the embedded default,
# or on the arguments given, e.g. scripts/run.sh examples/quickstart.toml --overwrite
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/saladpipe run "$@"
