"""The report page: every picture and sound it links exists, it names the parameters, it escapes file
names, and a real browser (headless Chromium, when installed) loads every picture and audio element."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

from synthinv.audio_io import write_wav
from synthinv.metrics import log_spectral_distance
from synthinv.report import write_report
from synthinv.synths.kosc import KOscSynth

SOUND_NAME = "my <pluck> & 'friends'.wav"


class _Links(HTMLParser):
    """Collects the src of <img> and <audio> elements and every href."""

    def __init__(self):
        super().__init__()
        self.img, self.audio, self.href = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("img", "audio") and "src" in a:
            getattr(self, tag).append(a["src"])
        if "href" in a:
            self.href.append(a["href"])


def fake_inversion(out: Path, length: int, n: int = 4, with_truth: bool = True):
    """A k=2 k-osc 'inversion': a target from known parameters, n candidates (one near the truth, the
    others random), ranked by LSD, written as the invert pipeline writes them."""
    synth = KOscSynth(k=2, length=length)
    truth = synth.random_params(1, seed=11)[0]  # (P,)
    gen = torch.Generator().manual_seed(0)
    near = (truth + 0.05 * torch.randn(truth.shape, generator=gen)).clamp(-1, 1)
    params = torch.cat([near[None], synth.random_params(n - 1, seed=12)])  # (n, P)
    target = synth.render(truth[None])[0]  # (T,)
    audio = synth.render(params)  # (n, T)
    out.mkdir(parents=True, exist_ok=True)
    write_wav(out / "target.wav", target, synth.sample_rate)
    lsd = log_spectral_distance(audio, target.expand_as(audio))
    candidates = []
    for rank, i in enumerate(lsd.argsort().tolist(), start=1):
        folder = out / f"candidate_{rank:02d}"
        folder.mkdir()
        write_wav(folder / "audio.wav", audio[i], synth.sample_rate)
        (folder / "preset.json").write_text(json.dumps({"synth": "kosc", "normalised": params[i].tolist()}))
        candidates.append({"rank": rank, "folder": folder.name, "audio": audio[i], "params": params[i],
                           "distance": float(lsd[i]) / 10, "check": float(lsd[i]), "level_db": -3.0 * i,
                           "source": "flow sample" if i else "refined from #1"})
    notes = ["resampled 48000 Hz -> 44100 Hz", "mixed 2 channels to mono"]
    path = write_report(out, target, candidates, synth, notes, SOUND_NAME, truth if with_truth else None)
    return path, synth


# 1024 samples -> spectra overlaid; 16384 -> spectrograms side by side (and no truth column).
CASES = [pytest.param(1024, True, id="short-note"), pytest.param(16384, False, id="long-note")]


@pytest.mark.parametrize("length, with_truth", CASES)
def test_every_linked_file_exists_and_parameters_are_named(tmp_path, length, with_truth):
    path, synth = fake_inversion(tmp_path / "out", length, with_truth=with_truth)
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    links = _Links()
    links.feed(page)
    assert len(links.img) >= 5  # the target's picture(s) and at least one per candidate
    assert len(links.audio) == 5  # target + 4 candidates
    for src in links.img + links.audio + [h for h in links.href if not h.startswith("#")]:
        assert not src.startswith(("/", "file:", "http")), f"{src} is not a relative link"
        assert (path.parent / unquote(src)).is_file(), f"{src} is linked but missing"
    assert all(f"candidate_{r:02d}/preset.json" in links.href for r in range(1, 5))
    for name in synth.spec.names:
        assert f">{name}<" in page
    assert ("<th>truth</th>" in page) == with_truth
    assert "resampled 48000 Hz -&gt; 44100 Hz" in page
    assert not list(path.parent.glob("*.tmp")) and not list(path.parent.glob(".*.tmp"))  # no temp file left


def test_text_from_file_names_is_escaped(tmp_path):
    path, _ = fake_inversion(tmp_path / "out", 1024)
    page = path.read_text(encoding="utf-8")
    assert "<pluck>" not in page and "my &lt;pluck&gt; &amp; &#x27;friends&#x27;.wav" in page


def test_a_second_report_leaves_no_pictures_of_the_first(tmp_path):
    fake_inversion(tmp_path / "out", 1024, n=4)
    for d in (tmp_path / "out").glob("candidate_*"):  # a new run into the same folder, fewer candidates
        shutil.rmtree(d)
    fake_inversion(tmp_path / "out", 1024, n=2)
    pictures = sorted(p.name for p in (tmp_path / "out" / "report_files").iterdir())
    assert pictures == ["candidate_01.png", "candidate_02.png", "target.png"]


def test_choices_integers_and_a_broken_render(tmp_path):
    """Categorical parameters show their label, discrete ones an integer; NaN audio still gets a page."""
    from synthinv.synths.base import Param, ParamSpec, SynthBase

    spec = ParamSpec("toy", (Param("cutoff", 20.0, 20000.0, scale="log"), Param.discrete("voices", 1, 8),
                             Param.categorical("shape", ["sine", "saw", "square"])))

    class Toy(SynthBase):  # what a report reads of a synth (nothing is rendered here)
        name, sample_rate, length = "toy", 44100, 1024

    synth = Toy()
    synth.spec = spec
    target = torch.sin(torch.arange(1024) * 0.1) * 0.5
    broken = target.clone()
    broken[100:200] = float("nan")
    out = tmp_path / "out"
    out.mkdir()
    write_wav(out / "target.wav", target, 44100)
    params = spec.encode(torch.tensor([[1000.0, 3.0, 1.0]]))[0]  # (5,): 1 + 1 + a 3-column one-hot block
    cand = {"rank": 1, "folder": "candidate_01", "audio": broken, "params": params, "distance": float("nan"),
            "check": float("inf"), "level_db": float("nan"), "source": "flow sample"}
    page = write_report(out, target, [cand], synth, [], "toy.wav", truth=params).read_text()
    assert "<td>saw</td>" in page and "<td>3</td>" in page and "<td>1000</td>" in page
    assert (out / "report_files" / "candidate_01.png").stat().st_size > 0


# --- in a real browser ------------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.skip("Chromium is not installed; install it to run the browser test: apt-get install -y chromium")


def media_check(browser: str, page: Path, profile: Path) -> str:
    """Load the page in headless Chromium and return the value its inline check left on <body>."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
           f"--user-data-dir={profile}", "--run-all-compositor-stages-before-draw",
           "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, f"Chromium returned no page: {dom[:200]!r}"
    check = re.search(r'data-media-check="([^"]*)"', body.group(0))
    return check.group(1) if check else f"no result in {body.group(0)}"


@pytest.mark.parametrize("length, with_truth", CASES)
def test_browser_loads_every_picture_and_sound(tmp_path, length, with_truth):
    browser = _chromium()
    path, _ = fake_inversion(tmp_path / "out", length, with_truth=with_truth)
    assert media_check(browser, path, tmp_path / "profile") == "ok"


def test_browser_check_catches_a_missing_picture_and_a_corrupt_sound(tmp_path):
    """The check above is only worth something if it can fail."""
    browser = _chromium()
    path, _ = fake_inversion(tmp_path / "out", 1024)
    (path.parent / "report_files" / "candidate_02.png").unlink()
    (path.parent / "candidate_03" / "audio.wav").write_bytes(b"not a wav file")
    result = media_check(browser, path, tmp_path / "profile")
    assert result.startswith("broken:")
    assert "report_files/candidate_02.png" in result and "candidate_03/audio.wav" in result

