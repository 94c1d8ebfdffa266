"""Plugin synth rendering speed: notes/s of one process with a fresh instance per note vs the reuse path.

For each plugin synth (default: amsynth, the Debian VST2, and subtractive3, the shipped Faust DSP) the same
random patches are rendered three ways, one after the other in this run:

- fresh: `DawDreamerHost(spec, fresh=True)`, a new plugin instance (VST) or a recompile (Faust) per note:
  what synthinv did before.
- reuse: the default path (VST: `plugin_server` forks once per N notes, each note on its own pristine
  instance, timed for N = 1 and the default; Faust: the compiled DSP, cleared by DawDreamer before each
  render). The audio is identical to "fresh" (checked here on the first notes, and in tests/test_plugin.py).
- render only (VST): one instance rendering note after note with no reset at all (the audio is NOT that of
  a fresh instance): the cost of the render itself, the ceiling for any exact reset.

Both wall-clock notes/s and CPU ms per note are printed. CPU time counts this process, the fork server and
its children, so it is what a note costs a core however busy the machine is; on a shared machine compare the
CPU figures, and the ratios, rather than wall-clock figures across runs.

    python benchmarks/bench_plugin.py [--quick] [--synths amsynth subtractive3] [--notes 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _common import add_common_args, apply_threads, finish, machine_info, print_machine, print_table


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of this process and of `pids` (and the children they have waited for)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def _time(render, rows, pids) -> dict:
    wall, cpu = time.perf_counter(), _cpu_seconds(pids())
    audio = render(rows)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds(pids()) - cpu
    return {"notes": len(rows), "wall s": wall, "notes/s": len(rows) / wall, "cpu ms/note": 1e3 * cpu / len(rows),
            "audio": audio}


def time_synth(name: str, n: int, n_fresh: int, instances: list[int]) -> tuple[list[tuple[str, dict]], dict]:
    """[(path, figures), ...] and the summary of one synth (see the module doc)."""
    from synthinv.build import build_synth
    from synthinv.synths import plugin_server
    from synthinv.synths.plugin import BLOCK_SIZE, DawDreamerHost

    synth = build_synth({"name": name})
    params = synth.spec.from_uniform(np.random.default_rng(0).uniform(-1, 1, (n, len(synth.spec.params))))
    fresh_host = DawDreamerHost(synth.spec_dict, fresh=True)

    def render_with(h):
        def render(rows):
            synth._host = h
            return synth.render(rows)
        return render

    render_with(fresh_host)(params[:1])  # warm-up
    fresh = _time(render_with(fresh_host), params[:n_fresh], lambda: [])
    reference = fresh.pop("audio").numpy()
    timed = [("fresh", fresh)]
    vst = synth.spec_dict["host"] == "vst"
    identical = True
    for k in (instances if vst else [None]):
        host = DawDreamerHost(synth.spec_dict)
        if k is not None:
            host._server = plugin_server.ForkServer(host.path, host.sample_rate, BLOCK_SIZE, instances=k)

        def pids(h=host) -> list[int]:
            return [h._server._proc.pid] if h._server is not None else []

        render_with(host)(params[: max(2, k or 0)])  # warm-up: the DSP compiles, the server loads its instances
        reuse = _time(render_with(host), params, pids)
        identical &= bool(np.array_equal(reference, reuse.pop("audio")[:n_fresh].numpy()))
        host.close()
        timed.append((f"reuse ({k} per fork)" if vst else "reuse", reuse))

    if vst:  # no reset at all: one instance, note after note (Faust's reuse path is that already)
        proc = fresh_host.new_instrument()
        seconds = (round(synth.pre_roll * synth.sample_rate) + synth.length + 441) / synth.sample_rate

        def render_only(rows):
            for values, note in synth.host_notes(rows):
                for key, value in values.items():
                    proc.set_parameter(fresh_host.address[key], float(value))
                proc.clear_midi()
                proc.add_midi_note(note, synth.velocity, synth.pre_roll, synth.note_duration)
                fresh_host.engine.render(seconds)
                np.asarray(fresh_host.engine.get_audio(), dtype=np.float32).mean(axis=0)

        only = _time(render_only, params, lambda: [])
        only.pop("audio", None)
        timed.append(("render only", only))
    best = min((r for label, r in timed if label.startswith("reuse")), key=lambda r: r["cpu ms/note"])
    return timed, {**dict(timed), "identical_to_fresh": identical, "speedup_wall": best["notes/s"] / fresh["notes/s"],
                   "speedup_cpu": fresh["cpu ms/note"] / best["cpu ms/note"], "best_reuse": best}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--synths", nargs="+", default=["amsynth", "subtractive3"], help="plugin synths to time")
    parser.add_argument("--notes", type=int, default=None, help="notes for the reuse paths (default 200; --quick 50)")
    parser.add_argument("--fresh-notes", type=int, default=None, help="notes for the fresh path (default 20; --quick 8)")
    parser.add_argument("--instances", type=int, nargs="+", default=None,
                        help="VST reuse path: pristine instances per fork server (notes per fork) to time (default: 1 and the default)")
    args = parser.parse_args(argv)
    apply_threads(args.threads or 1)

    from synthinv.synths import plugin_server

    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    n = args.notes or (50 if args.quick else 200)
    n_fresh = args.fresh_notes or (8 if args.quick else 20)
    instances = args.instances or sorted({1, plugin_server.INSTANCES})
    rows_out, results = [], {}
    for name in args.synths:
        timed, results[name] = time_synth(name, n, n_fresh, instances)
        rows_out += [{"synth": name, "path": label, **r} for label, r in timed]

    print(f"\nnotes of {', '.join(args.synths)}: random patches, one process (one worker), torch threads 1")
    print_table(rows_out, [("synth", "synth"), ("path", "path"), ("notes", "notes"), ("wall s", "wall s"),
                           ("notes/s", "notes/s (wall)"), ("cpu ms/note", "CPU ms/note")])
    for name, r in results.items():
        print(f"{name}: best reuse vs fresh {r['speedup_wall']:.1f}x wall, {r['speedup_cpu']:.1f}x CPU; "
              f"best reuse = {1e3 / r['best_reuse']['cpu ms/note']:.0f} notes/s per core of CPU; "
              f"identical audio to fresh instances: {'yes' if r['identical_to_fresh'] else 'NO'}")
    finish("bench_plugin", args, info, {"notes": n, "fresh_notes": n_fresh, "synths": args.synths}, results, started,
           ["'render only' reuses one instance with no reset: its audio differs from a fresh instance's; it is the "
            "floor cost of a note"])


if __name__ == "__main__":
    main()
