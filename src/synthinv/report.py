"""The HTML report of an inversion: what was heard, what was found, and how close each candidate is.

One page, `out_dir/report.html`, next to the files it links (relative links only, so the folder can be
zipped, moved or served as is):

    target.wav                      the sound as the model heard it (written by the caller)
    candidate_01/audio.wav, ...     each candidate's rendering and presets (written by the caller)
    report_files/*.png              the pictures drawn here

The page holds the notes on what was done to the input, a distance table (best first), audio players, and
per candidate a picture against the target plus its parameters in native units. Very short notes (fewer
than `SHORT_SOUND` samples, e.g. the k-osc synth's 1024) get a log power spectrum overlaid on the
target's, because a spectrogram of a few frames shows nothing; longer ones get log-frequency STFT
spectrograms side by side on one colour scale, fixed by the target's peak.

    path = write_report(out, target, candidates, synth, notes=["resampled 48000 Hz -> 44100 Hz"],
                        sound_name="pluck.wav")

Matplotlib is used through `Figure` objects (Agg), never pyplot: no global backend switch, no figures left
open, safe to call from any thread. Drawing is the cost (about 0.1 s a candidate at the default dpi).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from synthinv.fileio import atomic_write
from synthinv.metrics import assignment_mse, param_mse
from synthinv.scoring import scoring
from synthinv.synths.base import Synth
from synthinv.synths.tokens import split_tokens

SHORT_SOUND = 8192  # below this many samples draw a spectrum, at or above it a spectrogram
DPI = 80
FILES_DIR = "report_files"
SPEC_RANGE_DB = 80.0  # dynamic range shown in spectra and spectrograms, below the target's peak
TARGET_COLOUR, CANDIDATE_COLOUR = "0.45", "tab:orange"


# --- analysis -------------------------------------------------------------------------------------

def _spectrum_db(audio: np.ndarray, n_fft: int) -> np.ndarray:
    """(T,) -> (n_fft // 2 + 1,) Hann-windowed power in dB re a full-scale sine (floored at -200 dB).

    The window keeps the partials of short notes from leaking into each other's skirts; zero-padding to
    `n_fft` only smooths the curve, it adds no resolution.
    """
    window = np.hanning(len(audio))
    mag = np.abs(np.fft.rfft(audio * window, n=n_fft)) * 2.0 / window.sum()
    return 20.0 * np.log10(np.maximum(mag, 1e-10))


def _log_spectrogram(audio: np.ndarray, sample_rate: int, freqs: np.ndarray, n_fft: int = 2048,
                     hop: int = 512) -> np.ndarray:
    """(T,) -> (len(freqs), frames) STFT power in dB, linearly interpolated onto log-spaced `freqs`."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    window = torch.hann_window(n_fft)
    stft = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)  # (bins, frames)
    mag = (stft.abs() * 2.0 / window.sum()).numpy()
    pos = freqs / (sample_rate / n_fft)  # fractional bin of each display frequency
    lo = np.clip(np.floor(pos).astype(int), 0, mag.shape[0] - 2)
    frac = (pos - lo)[:, None]
    interp = mag[lo] * (1 - frac) + mag[lo + 1] * frac
    return 20.0 * np.log10(np.maximum(interp, 1e-10))


def _envelope(audio: np.ndarray, points: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) -> block index centres, minima, maxima over about `points` blocks (for long waveforms)."""
    block = max(1, len(audio) // points)
    n = len(audio) // block * block
    blocks = audio[:n].reshape(-1, block)
    centres = np.arange(blocks.shape[0]) * block + block / 2
    return centres, blocks.min(axis=1), blocks.max(axis=1)


# --- pictures -------------------------------------------------------------------------------------

def _hz_ticks(lo: float, hi: float) -> list[int]:
    return [t for t in (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000) if lo <= t <= hi]


def _hz_labels(ticks: list[int]) -> list[str]:
    return [f"{t // 1000}k" if t >= 1000 else str(t) for t in ticks]


def _draw_waveform(ax, audio: np.ndarray, sample_rate: int, colour, label: str, alpha: float = 1.0) -> None:
    if len(audio) <= 4000:  # every sample drawn; beyond that a min/max envelope
        ax.plot(np.arange(len(audio)) / sample_rate * 1000, audio, color=colour, lw=0.8, alpha=alpha,
                label=label)
    else:
        t, lo, hi = _envelope(audio, points=500)
        ax.fill_between(t / sample_rate * 1000, lo, hi, color=colour, alpha=alpha * 0.8, lw=0, label=label)
    ax.set_xlim(0, len(audio) / sample_rate * 1000)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("amplitude")


class _Painter:
    """Draws the target's and each candidate's pictures on ranges fixed by the target.

    Short sounds: one picture per candidate, its spectrum and waveform overlaid on the target's.
    Long sounds: the target's spectrogram is drawn once and the page shows it beside each candidate's
    (same size, same colour scale), with the waveforms overlaid in a picture below.
    Layouts use fixed margins: constrained layout would double the drawing time.
    """

    def __init__(self, target: np.ndarray, sample_rate: int, files: Path):
        self.target, self.sr, self.files = target, sample_rate, files
        self.short = len(target) < SHORT_SOUND
        self.peak_amp = max(float(np.abs(target).max()), 1e-3)
        if self.short:
            self.n_fft = max(4096, 1 << int(np.ceil(np.log2(len(target)))))
            self.freqs = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
            self.f_lo = max(20.0, 2.0 * sample_rate / len(target))  # below ~2 cycles the curve is the window
            self.target_db = _spectrum_db(target, self.n_fft)
            self.top_db = float(self.target_db[self.freqs >= self.f_lo].max()) + 5.0
        else:
            self.freqs = np.geomspace(30.0, sample_rate / 2 * 0.99, 256)
            self.target_db = _log_spectrogram(target, sample_rate, self.freqs)
            self.top_db = float(self.target_db.max()) + 5.0

    def _save(self, fig: Figure, name: str) -> str:
        fig.savefig(self.files / name)
        return f"{FILES_DIR}/{name}"

    def _waveform_ylim(self, ax, *signals: np.ndarray) -> None:
        peak = max([self.peak_amp] + [float(np.abs(s).max()) for s in signals])
        ax.set_ylim(-1.05 * peak, 1.05 * peak)

    def _spectrum_axes(self, ax, candidate: np.ndarray | None) -> None:
        keep = self.freqs >= self.f_lo
        f = self.freqs[keep]
        ax.plot(f, self.target_db[keep], color=TARGET_COLOUR, lw=1.2, label="target")
        top = self.top_db
        if candidate is not None:
            cand_db = _spectrum_db(candidate, self.n_fft)[keep]
            ax.plot(f, cand_db, color=CANDIDATE_COLOUR, lw=1.0, alpha=0.9, label="candidate")
            top = max(top, float(cand_db.max()) + 5.0)
        ax.set_xscale("log")
        ax.set_xlim(f[0], self.sr / 2)
        ticks = _hz_ticks(f[0], self.sr / 2)
        ax.set_xticks(ticks, _hz_labels(ticks))
        ax.xaxis.set_minor_locator(NullLocator())  # log-axis minor ticks cost more to draw than the curves
        ax.set_ylim(top - SPEC_RANGE_DB - 5.0, top)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("power (dB)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, frameon=False)

    def _spectrogram(self, db: np.ndarray, title: str, name: str) -> str:
        fig = Figure(figsize=(5.4, 2.7), dpi=DPI)
        fig.subplots_adjust(left=0.14, right=0.97, bottom=0.17, top=0.9)
        ax = fig.add_subplot()
        vmax = self.top_db - 5.0
        log_f = np.log10(self.freqs)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmax - SPEC_RANGE_DB, vmax=vmax,
                  extent=(0, len(self.target) / self.sr, log_f[0], log_f[-1]), interpolation="nearest")
        ticks = _hz_ticks(self.freqs[0], self.freqs[-1])
        ax.set_yticks(np.log10(ticks), _hz_labels(ticks))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
        ax.set_title(title, fontsize=9)
        return self._save(fig, name)

    def _waveforms(self, ax, audio: np.ndarray | None, rank: int | None) -> None:
        _draw_waveform(ax, self.target, self.sr, TARGET_COLOUR, "target", alpha=0.7 if audio is not None else 1.0)
        if audio is not None:
            _draw_waveform(ax, audio, self.sr, CANDIDATE_COLOUR, "candidate", alpha=0.8)
            ax.legend(loc="upper right", fontsize=8, frameon=False)
            self._waveform_ylim(ax, audio)
            ax.set_title(f"#{rank} vs target: waveform", fontsize=9)
        else:
            self._waveform_ylim(ax)
            ax.set_title("target: waveform", fontsize=9)

    def target_pictures(self) -> list[list[str]]:
        """The target alone -> rows of picture paths (relative to the report)."""
        if self.short:
            fig = Figure(figsize=(10, 2.7), dpi=DPI)
            fig.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.9, wspace=0.22)
            ax_s, ax_w = fig.subplots(1, 2, width_ratios=(3, 2))
            self._spectrum_axes(ax_s, None)
            ax_s.set_title("target: log power spectrum (Hann window)", fontsize=9)
            self._waveforms(ax_w, None, None)
            return [[self._save(fig, "target.png")]]
        spec = self._spectrogram(self.target_db, "target: log-frequency spectrogram", "target_spectrogram.png")
        return [[spec, self._wave_picture(None, None, "target_waveform.png")]]

    def _wave_picture(self, audio: np.ndarray | None, rank: int | None, name: str) -> str:
        fig = Figure(figsize=(5.4 if audio is None else 10.8, 2.7 if audio is None else 2.0), dpi=DPI)
        fig.subplots_adjust(left=0.14 if audio is None else 0.07, right=0.97, bottom=0.22 if audio is None else 0.24,
                            top=0.88)
        self._waveforms(fig.add_subplot(), audio, rank)
        return self._save(fig, name)

    def candidate_pictures(self, audio: np.ndarray, rank: int) -> list[list[str]]:
        """A candidate against the target -> rows of picture paths (relative to the report)."""
        if self.short:
            fig = Figure(figsize=(10, 2.7), dpi=DPI)
            fig.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.9, wspace=0.22)
            ax_s, ax_w = fig.subplots(1, 2, width_ratios=(3, 2))
            self._spectrum_axes(ax_s, audio)
            ax_s.set_title(f"#{rank} vs target: log power spectrum", fontsize=9)
            self._waveforms(ax_w, audio, rank)
            return [[self._save(fig, f"candidate_{rank:02d}.png")]]
        cand_db = _log_spectrogram(audio, self.sr, self.freqs)
        spec = self._spectrogram(cand_db, f"candidate #{rank}", f"candidate_{rank:02d}_spectrogram.png")
        return [[f"{FILES_DIR}/target_spectrogram.png", spec],
                [self._wave_picture(audio, rank, f"candidate_{rank:02d}_waveform.png")]]


# --- parameters -----------------------------------------------------------------------------------

def _display_order(synth: Synth, params: torch.Tensor) -> torch.Tensor:
    """(P,) -> (P,) in the order the table shows: the synth's canonical order (the symmetric k-osc synth
    lists its interchangeable oscillators by ascending frequency, for candidate and truth alike)."""
    return synth.canonical_order(params[None].float())[0]


def _param_error(synth: Synth, params: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean squared error to the true normalised parameters; for a synth with interchangeable tokens (the
    symmetric k-osc synth), after the best matching of tokens (the paper's assignment MSE)."""
    if synth.symmetric and synth.n_tokens is not None:
        pred, true = split_tokens(params[None].float(), synth.n_tokens), split_tokens(truth[None].float(), synth.n_tokens)
        return float(assignment_mse(pred, true)[0])
    return float(param_mse(params[None].float(), truth[None].float())[0])


def _native_strings(synth: Synth, params: torch.Tensor) -> list[str]:
    """(P,) normalised -> one printable native value per parameter (choice labels for categoricals)."""
    native = synth.spec.decode(params[None].float())[0].tolist()
    out = []
    for p, v in zip(synth.spec.params, native):
        if p.choices:  # categorical
            out.append(str(p.choices[int(v)]))
        elif p.kind == "discrete":
            out.append(str(int(round(v))))
        else:
            out.append(f"{v:.4g}")
    return out


# --- html -----------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
div.row { display: flex; gap: 0; margin: 0.3em 0; }
div.row img { min-width: 0; max-width: 100%; height: auto; }
audio { height: 2em; vertical-align: middle; }
.meta { color: #666; font-size: 0.9em; }
section.cand { margin-bottom: 1.2em; }
"""

# Sets <body data-media-check="ok"> once every picture has decoded and every audio element has read its
# metadata, or "broken: <srcs>" / "pending: <srcs>"; a headless browser test reads it from the DOM.
MEDIA_CHECK_JS = """
window.addEventListener("load", function () {
  var started = Date.now();
  function poll() {
    var broken = [], pending = [];
    Array.prototype.forEach.call(document.images, function (img) {
      if (!img.complete) pending.push(img.getAttribute("src"));
      else if (img.naturalWidth === 0) broken.push(img.getAttribute("src"));
    });
    Array.prototype.forEach.call(document.querySelectorAll("audio"), function (a) {
      if (a.error) broken.push(a.getAttribute("src"));
      else if (a.readyState < 1) pending.push(a.getAttribute("src"));
    });
    if (broken.length) document.body.dataset.mediaCheck = "broken: " + broken.join(" ");
    else if (!pending.length) document.body.dataset.mediaCheck = "ok";
    else if (Date.now() - started > 10000) document.body.dataset.mediaCheck = "pending: " + pending.join(" ");
    else setTimeout(poll, 50);
  }
  poll();
});
"""


def _drawable(audio) -> np.ndarray:
    """Any (T,) tensor or array -> float32 numpy with NaN/inf as 0 (a broken render still gets a picture)."""
    x = torch.as_tensor(audio).detach().float().cpu().numpy().reshape(-1)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _url(relative: str) -> str:
    """A relative path -> an attribute-safe relative URL (spaces, #, ? and quotes encoded)."""
    return _e(quote(relative.replace(os.sep, "/")))


def _candidate_files(out_dir: Path, folder: str) -> list[str]:
    """Links to what the candidate folder holds besides its audio (preset.json, .syx, ...)."""
    d = out_dir / folder
    names = sorted(p.name for p in d.iterdir() if p.is_file() and p.name != "audio.wav") if d.is_dir() else []
    return [f'<a href="{_url(f"{folder}/{n}")}">{_e(n)}</a>' for n in names]


def _pictures(rows: list[list[str]], alt: str) -> str:
    """Rows of pictures, the pictures of a row side by side."""
    return "".join('<div class="row">' + "".join(f'<img src="{_url(src)}" alt="{_e(alt)}">' for src in row)
                   + "</div>" for row in rows)


def _audio_tag(src: str) -> str:
    return f'<audio controls preload="metadata" src="{_url(src)}"></audio>'


def _param_table(synth: Synth, params: torch.Tensor, truth: torch.Tensor | None) -> str:
    names = [p.name for p in synth.spec.params]
    values = _native_strings(synth, _display_order(synth, params))
    truths = _native_strings(synth, _display_order(synth, truth)) if truth is not None else None
    head = '<tr><th class="l">parameter</th><th>value</th>' + ("<th>truth</th>" if truths else "") + "</tr>"
    rows = [
        f'<tr><td class="l">{_e(n)}</td><td>{_e(v)}</td>' + (f"<td>{_e(truths[i])}</td>" if truths else "") + "</tr>"
        for i, (n, v) in enumerate(zip(names, values))
    ]
    return "<table>" + head + "".join(rows) + "</table>"


def write_report(out_dir: Path, target: torch.Tensor, candidates: list[dict], synth: Synth, notes: list[str],
                 sound_name: str, truth: torch.Tensor | None = None) -> Path:
    """Write `out_dir/report.html` (+ pictures under `out_dir/report_files/`) and return its path.

    target: (T,) mono audio at synth.sample_rate, already saved as out_dir/target.wav.
    candidates: dicts with "rank" (1-based), "folder" (relative to out_dir, holding audio.wav and the
        presets), "audio" (T,), "params" (P,) normalised, "distance" (lower is better), "check" (the second
        opinion), both as synthinv.scoring names them for this synth, "level_db" (RMS level against the
        target), "source" (e.g. "flow sample"); drawn in rank order.
    notes: what was done to the input, in words. truth: (P,) normalised true parameters, if known.
    The page is written to a temporary name and renamed, so a report.html that exists is complete.
    """
    scored = scoring(synth)  # what the candidates were ranked by, and the second opinion beside it
    ranking_label, check_label = scored.label, scored.check_label
    out_dir = Path(out_dir)
    files = out_dir / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)
    for old in [*files.glob("target*.png"), *files.glob("candidate_*.png")]:  # pictures of an earlier run
        old.unlink()
    sr = int(synth.sample_rate)
    target_np = _drawable(target)
    cands = sorted(candidates, key=lambda c: c["rank"])
    painter = _Painter(target_np, sr, files)
    target_pics = painter.target_pictures()
    cand_pics = {c["rank"]: painter.candidate_pictures(_drawable(c["audio"]), c["rank"]) for c in cands}

    truth = None if truth is None else torch.as_tensor(truth).detach().float().cpu().reshape(-1)
    symmetric = synth.symmetric and synth.n_tokens is not None
    seconds = len(target_np) / sr
    kind = "log power spectrum" if painter.short else "log-frequency spectrogram"

    plural = "s" if len(cands) != 1 else ""
    how = " against the target's; the target is grey." if painter.short else ", one colour scale fixed by the target's peak."
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>synthinv: {_e(sound_name)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(sound_name)} &rarr; {_e(synth.name)} presets</h1>",
        f'<p class="meta">{len(cands)} candidate{plural}, ranked by {_e(ranking_label)} (lower is '
        f"better). Target: {len(target_np)} samples ({seconds * 1000:.0f} ms) at {sr} Hz. Pictures: {kind}{how}</p>",
        "<h2>Input</h2>",
        "<ul>" + ("".join(f"<li>{_e(n)}</li>" for n in notes) if notes else "<li>used as is</li>") + "</ul>",
        f'<p>target {_audio_tag("target.wav")} <a href="{_url("target.wav")}">target.wav</a></p>',
        _pictures(target_pics, "target"),
        "<h2>Ranking</h2>",
    ]
    err_head = "<th>param. error vs truth</th>" if truth is not None else ""
    rows = []
    for c in cands:
        err = ""
        if truth is not None:
            err = f"<td>{_param_error(synth, torch.as_tensor(c['params']).float().cpu().reshape(-1), truth):.4f}</td>"
        rows.append(
            f'<tr><td><a href="#c{c["rank"]:02d}">#{c["rank"]}</a></td><td>{c["distance"]:.4f}</td>'
            f'<td>{c["check"]:.2f}</td><td>{c["level_db"]:+.1f}</td>{err}<td class="l">{_e(c["source"])}</td>'
            f'<td class="l">{" ".join(_candidate_files(out_dir, c["folder"]))}</td></tr>'
        )
    parts.append(
        f'<table><tr><th>rank</th><th>{_e(ranking_label)}</th><th>{_e(check_label)}</th>'
        '<th title="RMS level of the candidate relative to the target; the ranking ignores it">level (dB)</th>' + err_head
        + '<th class="l">source</th><th class="l">presets</th></tr>' + "".join(rows) + "</table>"
    )
    also = [f'<a href="{_url(n)}">{_e(n)}</a>' for n in ("ranking.csv", "summary.json") if (out_dir / n).is_file()]
    if also:
        parts.append(f'<p class="meta">Also as {" and ".join(also)}.</p>')
    if truth is not None:
        parts.append('<p class="meta">Param. error: mean squared error of the normalised parameters'
                     + (", after the best matching of oscillators." if symmetric else ".") + "</p>")

    parts.append("<h2>Candidates</h2>")
    if symmetric:
        parts.append('<p class="meta">The oscillators of this synth are interchangeable: parameter tables list '
                     "them by ascending frequency, which may differ from the order in preset.json.</p>")
    open_all = len(synth.spec.params) <= 24
    for c in cands:
        r, folder = c["rank"], c["folder"]
        params = torch.as_tensor(c["params"]).detach().float().cpu().reshape(-1)
        parts += [
            f'<section class="cand" id="c{r:02d}"><h3>#{r} &middot; {_e(folder)} &middot; distance '
            f'{_e(ranking_label)} {c["distance"]:.4f} &middot; {_e(check_label)} {c["check"]:.2f} &middot; {_e(c["source"])}</h3>',
            f'<p>{_audio_tag(f"{folder}/audio.wav")} {" ".join(_candidate_files(out_dir, folder))}</p>',
            _pictures(cand_pics[r], f"candidate {r} vs target"),
            f'<details{" open" if open_all or r == 1 else ""}><summary>parameters</summary>'
            + _param_table(synth, params, truth) + "</details></section>",
        ]
    parts += [f"<script>{MEDIA_CHECK_JS}</script>", "</body></html>"]

    return atomic_write(out_dir / "report.html", "\n".join(parts))
