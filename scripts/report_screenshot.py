"""A picture of an `invert` report page, taken by headless Chromium (Debian's `chromium`; `.ci/run` installs it),
so the README's screenshot can be re-taken whenever `invert` changes.

    .venv/bin/synthinv invert examples/dexed_heldout_0.wav --truth examples/dexed_heldout_0.json \
        --out inversions/quickstart --force
    python scripts/report_screenshot.py inversions/quickstart/report.html results/invert_dexed_quickstart_report.png \
        [--width 1200] [--height 1600]

The page is rendered at --width x --height CSS pixels (the top of the page: the target, the first candidates'
spectra and the ranking table) after its pictures have loaded.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    sys.exit("Chromium is not installed: apt-get install -y chromium")


def screenshot(page: Path, out: Path, width: int, height: int) -> None:
    if not page.is_file():
        sys.exit(f"{page} does not exist: run `synthinv invert ... --out DIR` first (it writes DIR/report.html)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
               f"--user-data-dir={profile}", "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
               f"--window-size={width},{height}", f"--screenshot={out.resolve()}", page.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.is_file():
        sys.exit(f"Chromium could not take the screenshot (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page", type=Path, help="an invert report.html")
    ap.add_argument("out", type=Path, help="the .png to write")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=1600)
    args = ap.parse_args()
    screenshot(args.page, args.out, args.width, args.height)


if __name__ == "__main__":
    main()
