#!/usr/bin/env bash
# Screenshot a synthinv report page with headless Chromium (for the README).
#   scripts/screenshot_report.sh out/report.html docs/report.png [WIDTH,HEIGHT]
# Needs Chromium: `apt-get install -y chromium` (Debian) or `chromium-browser` (Ubuntu snap); set
# CHROMIUM=/path/to/chrome to use another build.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT (default 1200,1600)]" >&2
  exit 2
fi
report=$1
out=$2
size=${3:-1200,1600}
[[ -f $report ]] || { echo "error: no such report: $report" >&2; exit 1; }

browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
[[ -n $browser ]] || { echo "error: Chromium not found; install it with: apt-get install -y chromium" >&2; exit 1; }

# file:// URL with spaces and other odd characters encoded; absolute output path (Chromium's cwd may differ).
url=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve().as_uri())' "$report")
out_abs=$(python3 -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).resolve())' "$out")
mkdir -p "$(dirname "$out_abs")"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# The virtual time budget lets images and audio metadata load before the picture is taken.
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --mute-audio --user-data-dir="$profile" --window-size="$size" --virtual-time-budget=5000 \
  --screenshot="$out_abs" "$url" >/dev/null 2>"$profile/stderr.log" || {
  echo "error: Chromium failed:" >&2; tail -5 "$profile/stderr.log" >&2; exit 1; }
[[ -s $out_abs ]] || { echo "error: Chromium wrote no screenshot" >&2; tail -5 "$profile/stderr.log" >&2; exit 1; }
echo "$out_abs"
