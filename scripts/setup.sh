#!/usr/bin/env bash
# Create .venv and install synthinv with its pinned dependencies (CPU torch) and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/python -c "import synthinv, torch; print(f'synthinv {synthinv.__version__} ready (torch {torch.__version__})')"
