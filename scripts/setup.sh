#!/usr/bin/env bash
# Create .venv and install synthinv with its pinned dependencies (CPU torch) and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet -e '.[test]'
# Debian's amsynth (a VST2 synth) for the plugin backend and its tests (they skip without it): installed
# here when we are root on a Debian-like system, else a hint.
if [ ! -e /usr/lib/vst/amsynth_vst.so ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq amsynth >/dev/null) || echo "amsynth could not be installed: plugin tests will skip"
  else
    echo "optional: sudo apt-get install amsynth (the amsynth plugin synth and its tests)"
  fi
fi
.venv/bin/python -c "import synthinv, torch; print(f'synthinv {synthinv.__version__} ready (torch {torch.__version__})')"
