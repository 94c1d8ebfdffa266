"""Helpers of scripts/amsynth_experiment.sh (issue 6: the plugin backend end to end on amsynth).

    python scripts/amsynth_experiment.py heldout OUT_DIR     # a held-out note: heldout_0.{wav,json,fxb}
    python scripts/amsynth_experiment.py table RUNS_DIR OUT.md [--budget MIN] [--train-data DIR] [--inversion DIR]

(results/amsynth.md's closing "What it shows" section is written by hand after the table.)

The held-out note is example 0 of seed HELDOUT_SEED (5_000_011, the seed scripts/make_examples.py uses:
none of the training, validation, test or random-baseline split seeds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from synthinv.tables import markdown_table

HELDOUT_SEED = 5_000_011
METHODS = (("flow_param2tok", "flow, Param2Tok transformer"), ("flow_mlp", "flow, MLP field"),
           ("regression_mse", "regression, MSE"))


def heldout(out: Path) -> None:
    from synthinv import synths
    from synthinv.audio_io import write_wav
    from synthinv.presets import write_json_preset

    synth = synths.from_settings({"name": "amsynth"})
    params, audio = synth.draw(HELDOUT_SEED, np.array([0]))  # (1, 44), (1, T)
    out.mkdir(parents=True, exist_ok=True)
    write_wav(out / "heldout_0.wav", audio[0], synth.sample_rate)
    write_json_preset(out / "heldout_0.json", synth, params[0])
    synth.save_state(params[0], out / "heldout_0.fxb")
    print(f"wrote {out / 'heldout_0.wav'} (+ .json, .fxb)")


def _audio(m: dict, suffix: str = "") -> list[str]:
    """wMFCC, SOT, RMS cosine cells (synthinv.metrics, written by `synthinv evaluate`), or dashes."""
    cells = []
    for key, fmt in (("wmfcc", ".2f"), ("sot", ".4f"), ("rms_cos", ".3f")):
        v = m.get(key + suffix)
        cells.append("-" if v is None else f"{v:{fmt}} ± {m[key + suffix + '_ci95']:{fmt}}")
    return cells


def table(runs: Path, out: Path, budget: str, train_data: str, inversion: Path | None) -> None:
    rows, metrics = [], {}
    for method, label in METHODS:
        path = runs / method / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        t = json.loads((runs / method / "train.json").read_text())
        metrics[method] = m
        rows.append([label, f"{m['mss']:.2f} ± {m['mss_ci95']:.2f}", *_audio(m), f"{m['param_mse']:.3f}",
                     f"{m['categorical_accuracy']:.3f}", t["steps"]])
    if not metrics:
        raise SystemExit(f"no metrics.json under {runs}")
    first = next(iter(metrics.values()))
    lines = [
        "# amsynth (VST2 via DawDreamer): the plugin backend end to end at a small budget (issue 6)",
        "",
        f"Budget: {budget} CPU minutes of training per method (`--threads 1`, on the shared 2-core machine), "
        f"{train_data}. Test: the first {first['n']} examples of data/amsynth_test (seed 3, the same uniform "
        "spec prior with silent draws redrawn), one flow sample per sound, "
        f"{first['sample_steps']} RK4 steps, guidance {first['guidance']}. MSS in dB (lower is better), ± the "
        "95% interval of the mean; wMFCC (DTW-aligned MFCC distance), SOT (spectral optimal transport) and the "
        "RMS-envelope cosine as `synthinv evaluate` computes them (synthinv.metrics); parameter MSE on the "
        "44 normalised columns; categorical accuracy over the 6 one-hot parameters.",
        "",
        markdown_table(["method", "MSS (dB)", "wMFCC", "SOT", "RMS cos (higher better)", "parameter MSE",
                        "categorical accuracy", "training steps"],
                       [["random patches (same prior)", f"{first['mss_random']:.2f} ± {first['mss_random_ci95']:.2f}",
                         *_audio(first, "_random"), f"{first['param_mse_random']:.3f}",
                         f"{first['categorical_accuracy_random']:.3f}", "-"], *rows]),
    ]
    if inversion is not None and (inversion / "summary.json").exists():
        s = json.loads((inversion / "summary.json").read_text())
        best = s["ranking"][0]
        lines += ["", f"Inversion of one held-out note ({s['sound']}, `synthinv invert` with {s['model']}, "
                      f"{s['candidates']} candidates, refine budget {s['refine_budget']}"
                      + (f", {s['transposed']} of them moved to the target's pitch" if s.get("transpose") else "")
                      + f"): best candidate MSS {best['distance']:.2f} dB (invert ranks by MSS; {best['source']}), "
                      f"wMFCC {best['wmfcc']:.2f}; "
                      f"report: {inversion / 'report.html'} (not committed), presets with the plugin's own "
                      "state (preset.fxb) beside preset.json."]
    lines += ["", "Commands (what `scripts/amsynth_experiment.sh` runs, one process at a time, `OMP_NUM_THREADS=1`):", "",
              "```bash",
              "synthinv generate --synth amsynth --n 6144 --shard-size 1024 --seed 1 --out data/amsynth_train --workers 1",
              "synthinv generate --synth amsynth --n 256 --shard-size 256 --seed 3 --out data/amsynth_test --workers 1",
              f"synthinv train flow_param2tok --synth amsynth --data data/amsynth_train --budget {budget} --threads 1 --out runs/amsynth/flow_param2tok",
              f"synthinv train regression_mse --synth amsynth --data data/amsynth_train --budget {budget} --threads 1 --out runs/amsynth/regression_mse",
              f"synthinv train flow_mlp --synth amsynth --data data/amsynth_train --budget {budget} --threads 1 --out runs/amsynth/flow_mlp",
              "synthinv evaluate runs/amsynth/<method>/model.ckpt --data data/amsynth_test --n 256 --threads 1",
              "python scripts/amsynth_experiment.py heldout runs/amsynth/heldout   # example 0 of seed 5000011",
              "synthinv invert runs/amsynth/heldout/heldout_0.wav --synth amsynth --model runs/amsynth/flow_param2tok/model.ckpt \\",
              "  --truth runs/amsynth/heldout/heldout_0.json --candidates 8 --refine 100 --threads 1 --out inversions/amsynth_heldout_0",
              "```"]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("heldout")
    h.add_argument("out", type=Path)
    t = sub.add_parser("table")
    t.add_argument("runs", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--budget", default="?")
    t.add_argument("--train-data", default="data/amsynth_train")
    t.add_argument("--inversion", type=Path)
    args = parser.parse_args()
    if args.cmd == "heldout":
        heldout(args.out)
    else:
        table(args.runs, args.out, args.budget, args.train_data, args.inversion)


if __name__ == "__main__":
    main()
