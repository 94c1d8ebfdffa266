"""Inverting a folder of sounds: one model load and one worker pool for all of them.

    out/
      <file stem>/        what `synthinv invert` writes for one sound (report.html, candidate_01/, ...)
      bank_01.syx         Dexed: 32-voice DX7 banks of each sound's best preset, voices named after the files
      batch.csv           file, status ("done", "skipped: <error>"), best distance, folder

Resumable: a sound whose folder already holds a complete result (its summary.json) is not inverted again.
Ctrl-C during a search writes that sound's best so far (marked interrupted, so a rerun redoes it) and stops.
A file that cannot be inverted (not audio, silent, ...) is reported and skipped; the others go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from synthinv import tables
from synthinv.errors import SynthinvError
from synthinv.fileio import atomic_write
from synthinv.ood import AUDIO_SUFFIXES, audio_files_in
from synthinv.progress import progress_bar
from synthinv.synths.base import Synth


@dataclass
class BatchResult:
    rows: list[dict]  # one per file: file, status, distance, folder
    banks: list[Path]


def voice_name(stem: str) -> str:
    """A DX7 voice name (10 printable ASCII characters) from a file name."""
    clean = "".join(c if 32 <= ord(c) < 127 else "_" for c in stem)
    return clean[:10]


def invert_folder(inverter, folder: Path, out: Path, say=print, **invert_settings) -> BatchResult:
    """Invert every sound of `folder` into out/<stem>/, skipping finished ones and bad files (reported)."""
    from synthinv.pipeline import write_inversion

    files = audio_files_in(folder)
    if not files:
        raise SynthinvError(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    stems = [p.stem for p in files]
    names = [p.name if stems.count(p.stem) > 1 else p.stem for p in files]  # kick.wav + kick.flac: two folders
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with progress_bar(len(files), f"inverting {folder.name}", unit="files") as advance:
        for path, name in zip(files, names):
            target = out / name
            row = {"file": path.name, "folder": name}
            summary = json.loads((target / "summary.json").read_text()) if (target / "summary.json").is_file() else {}
            if summary and not summary.get("interrupted"):  # finished in an earlier run
                rows.append({**row, "status": "done earlier", "distance": summary["ranking"][0]["distance"]})
                advance(1)
                continue
            try:
                result = inverter.invert(path, **invert_settings)
                write_inversion(result, target, force=True)
                if result.settings.get("interrupted"):  # Ctrl-C: this sound's best so far is written; stop here
                    rows.append({**row, "status": "interrupted", "distance": round(result.candidates[0].distance, 4)})
                    write_table(out, rows)
                    raise KeyboardInterrupt
                rows.append({**row, "status": "done", "distance": round(result.candidates[0].distance, 4)})
            except SynthinvError as exc:
                say(f"skipped {path.name}: {exc}")
                rows.append({**row, "status": f"skipped: {exc}", "distance": None, "folder": None})
            advance(1)
    synth = inverter.search_synth  # the spec the presets were written in
    banks = write_banks(synth, out, rows) if synth.preset_bank_size else []
    write_table(out, rows)
    return BatchResult(rows, banks)


def write_table(out: Path, rows: list[dict]) -> None:
    """out/batch.csv: one row per file, in order."""
    atomic_write(out / "batch.csv", tables.csv_text(rows, ["file", "status", "distance", "folder"]))


def write_banks(synth: Synth, out: Path, rows: list[dict]) -> list[Path]:
    """Each inverted sound's best preset into the synth's own bank files (`Synth.write_preset_bank`; Dexed:
    32-voice banks bank_01.syx, bank_02.syx, ...)."""
    from synthinv.presets import read_json_preset

    done, size = [r for r in rows if r["folder"]], synth.preset_bank_size
    banks = []
    for b in range(0, len(done), size):
        part = done[b: b + size]
        params = torch.stack([read_json_preset(out / r["folder"] / "candidate_01" / "preset.json", synth) for r in part])
        names = [voice_name(Path(r["file"]).stem) for r in part]
        banks.append(synth.write_preset_bank(out / f"bank_{b // size + 1:02d}", params, names))
    return banks
