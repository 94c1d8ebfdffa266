"""Which CMA-ES for the search: pycma (`cma`) against the `cmaes` package, same starts, same renders.

    pip install cmaes==0.13.1   # not a dependency of synthinv; only this comparison uses it
    python benchmarks/bench_optimisers.py [--sounds 4] [--renders 200]

For a few Dexed test sounds: the bank's nearest patch as the start, then each optimiser for --renders
renders on the numeric parameters (synthinv.search.search_columns), rendering and scoring on the worker
pool. Prints seconds spent outside rendering (the optimiser's own ask/tell), total seconds and the MSS
reached, per optimiser.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from synthinv.bank import get_bank
from synthinv.search import SIGMA0, Objective, search_columns
from synthinv.search import _Pycma as Pycma  # the search's own adapter, measured as the search uses it
from synthinv.synths.dexed import DexedSynth
from synthinv.workers import SynthPool


class CmaesRun:
    def __init__(self, x0, seed):
        from cmaes import CMA

        self.es = CMA(mean=np.clip(x0, -1, 1), sigma=SIGMA0, bounds=np.tile([-1.0, 1.0], (len(x0), 1)), seed=seed)

    def ask(self):
        self.x = np.stack([self.es.ask() for _ in range(self.es.population_size)])
        return self.x

    def tell(self, values):
        self.es.tell(list(zip(self.x, values)))


def run(make, objective, start, columns, renders: int, seed: int) -> tuple[float, float, float]:
    """-> (optimiser seconds, total seconds, best distance)."""
    t0 = time.perf_counter()
    opt, own, best, used = make(start[columns].double().numpy(), seed), 0.0, float("inf"), 0
    own += time.perf_counter() - t0
    while used < renders:
        t = time.perf_counter()
        x = opt.ask()
        own += time.perf_counter() - t
        batch = start.expand(len(x), -1).clone()
        batch[:, columns] = torch.from_numpy(np.clip(x, -1, 1)).float()
        values = objective(batch)
        used += len(batch)
        t = time.perf_counter()
        opt.tell(values)
        own += time.perf_counter() - t
        best = min(best, float(values.min()))
    return own, time.perf_counter() - t0, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sounds", type=int, default=4)
    ap.add_argument("--renders", type=int, default=200)
    args = ap.parse_args()
    import cma  # noqa: F401 - imported before timing (its import alone takes a second or two)

    synth = DexedSynth()
    bank = get_bank(synth)
    columns, _ = search_columns(synth.spec)
    _, audio = synth.draw(3, np.arange(100, 100 + args.sounds))
    totals: dict[str, list] = {"pycma": [], "cmaes": []}
    with SynthPool(synth) as pool:
        for i in range(args.sounds):
            objective = Objective(pool, audio[i], f"t{i}")
            idx, _ = bank.nearest(audio[i], synth.sample_rate, 8)
            start = bank.params[idx][int(np.argmin(objective(bank.params[idx])))]
            for name, make in (("pycma", lambda x0, seed: Pycma(x0, SIGMA0, seed, None)), ("cmaes", CmaesRun)):
                own, total, best = run(make, objective, start, columns, args.renders, seed=i)
                totals[name].append((own, total, best))
                print(f"sound {i}: {name:>5} {args.renders} renders: optimiser {own:6.2f} s of {total:6.2f} s, "
                      f"best MSS {best:.2f} dB", flush=True)
    for name, rows in totals.items():
        own, total, best = (np.mean([r[k] for r in rows]) for k in range(3))
        print(f"{name:>5}: mean optimiser {own:.2f} s, total {total:.2f} s, best MSS {best:.2f} dB over {len(rows)} sounds")


if __name__ == "__main__":
    main()
