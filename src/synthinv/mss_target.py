"""MSS to one fixed target, fast: what a search calls thousands of times per sound.

`metrics.mss_distance` is the definition; `MSSTarget` computes the same number (to float tolerance, tested)
for many candidates against one target, with the target's three relative log-mels computed once and each
candidate's spectrograms built with fewer passes over memory than `torch.stft` takes:

- one zero-padded copy of the candidate serves all three scales (torch.stft pads once per scale);
- each frame is windowed over the window's own length and the FFT zero-pads it to the power-of-two size
  into a buffer whose tail stays zero. stft centres the window inside the FFT frame instead; the two frames
  differ by a circular shift, which changes only the phase, so the power spectrum is the same;
- the real and imaginary parts are squared in place and summed straight into a (bins, frames) buffer, the
  layout in which the mel filters (a sparse matrix) multiply without a copy;
- frames that lie wholly in a candidate's exactly silent tail (many DX7 patches end in digital zeros) are
  not transformed: their power is 0, which is what the FFT of a zero frame gives;
- the small per-frame work (log, relative floor, difference to the target) runs once on the whole batch.
Rows are transformed one at a time: batched FFTs over many rows left the cache and ran slower.
"""

from __future__ import annotations

import warnings

import torch

from synthinv.features import _mel_setup
from synthinv.metrics import MSS_ABS_FLOOR_DB, MSS_RANGE_DB, MSS_SCALES, relative_db_


class _Scale:
    """One (window ms, hop ms, mels) scale of the MSS for candidates of `length` samples; with `stride` s, only
    every s-th of its frames (frames 0, s, 2s, ...)."""

    def __init__(self, sample_rate: int, win_ms: float, hop_ms: float, n_mels: int, length: int, pad: int,
                 stride: int = 1):
        win, hop, n_fft, window, filters = _mel_setup(sample_rate, n_mels, float(win_ms), float(hop_ms))
        self.win, self.hop, self.window = win, hop * stride, window
        self.frames = (1 + length // hop + stride - 1) // stride  # of stft's 1 + length // hop (center=True)
        # where frame 0's window starts in the candidate padded by `pad` on both sides (stft: the frame starts
        # n_fft // 2 before the sample, the window sits centred in it)
        self.start = pad - n_fft // 2 + (n_fft - win) // 2
        self.buffer = torch.zeros(self.frames, n_fft)  # (frames, n_fft); columns from win on stay zero
        self.power = torch.empty(n_fft // 2 + 1, self.frames)  # (F, frames): the layout the filters multiply fastest
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch calls CSR "beta"; the product used here is stable
            self.filters = filters.to_sparse_csr()  # (M, F); faster than dense at every scale (bench_invert)
        self.n_mels = n_mels
        self.power_scale = 1.0 / float(window.sum()) ** 2  # as log_mel_spectrogram: |X|^2 / (sum of window)^2

    def sounding_frames(self, end: int) -> int:
        """How many frames, from the first, touch a padded candidate whose samples from `end` on are all 0."""
        return min(self.frames, max(0, (end - self.start + self.hop - 1) // self.hop))

    def mel_power(self, padded: torch.Tensor, end: int, out: torch.Tensor) -> None:
        """padded (T + 2 pad,), zero from index `end` on -> out (M, frames): mel power, unscaled."""
        n = self.sounding_frames(end)  # frames from n on hold only zeros: power 0, no FFT needed
        if n < self.frames:
            self.power[:, n:] = 0.0
        if n == 0:
            out.zero_()
            return
        frames = padded[self.start:self.start + (n - 1) * self.hop + self.win].unfold(0, self.win, self.hop)
        torch.mul(frames, self.window, out=self.buffer[:n, :self.win])  # (n, win)
        squares = torch.view_as_real(torch.fft.rfft(self.buffer[:n])).square_()  # (n, F, 2)
        torch.add(squares[..., 0].T, squares[..., 1].T, out=self.power[:, :n])  # |X|^2 written transposed in the same pass
        torch.mm(self.filters, self.power, out=out)


class MSSTarget:
    """`mss_distance` to one fixed target: call it with candidates audio (N, T) -> MSS (N,) in dB.

    frame_stride s > 1: the same distance on every s-th frame of each scale only (target and candidates
    alike) - an estimate of the MSS for about 1/s of the work, for a search that scores thousands of
    candidates and re-ranks its best by the full distance."""

    def __init__(self, target: torch.Tensor, sample_rate: int, scales: tuple[tuple[float, float, int], ...] = MSS_SCALES,
                 frame_stride: int = 1):
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        self.sample_rate, self.length = sample_rate, target.shape[-1]
        self.pad = max(_mel_setup(sample_rate, n_mels, float(w), float(h))[2] for w, h, n_mels in scales) // 2
        self._scales = [_Scale(sample_rate, w, h, n_mels, self.length, self.pad, frame_stride)
                        for w, h, n_mels in scales]
        self._padded = torch.zeros(self.length + 2 * self.pad)  # (T + 2 pad,), the ends stay zero
        # the target's log-mels by the same code as the candidates': a candidate equal to it scores exactly 0
        self._target = self._relative_log_mels(torch.as_tensor(target, dtype=torch.float32).reshape(1, -1))

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (N, T) -> MSS (N,) in dB against the target, equal to `mss_distance` to float tolerance."""
        audio = torch.as_tensor(audio, dtype=torch.float32)
        if audio.shape[-1] != self.length:
            raise ValueError(f"audio has {audio.shape[-1]} samples, the target {self.length}")
        total = torch.zeros(len(audio))
        for mel, target in zip(self._relative_log_mels(audio), self._target):
            total += (mel - target).abs_().mean(dim=(1, 2))
        return total / len(self._scales)

    def _relative_log_mels(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """audio (N, T) -> per scale (N, M, frames), as `relative_log_mel`."""
        mels = [torch.empty(len(audio), s.n_mels, s.frames) for s in self._scales]
        middle = self._padded[self.pad:self.pad + self.length]
        for i, row in enumerate(audio):
            middle.copy_(row)
            end = self.pad + _sounding_length(row)
            for scale, mel in zip(self._scales, mels):
                scale.mel_power(self._padded, end, mel[i])
        return [_relative_db(mel, scale.power_scale) for scale, mel in zip(self._scales, mels)]


def _sounding_length(row: torch.Tensor) -> int:
    """row (T,) -> the length of the row without its exactly-zero tail (0 for an all-zero row)."""
    samples = row.numpy()
    if samples[-1] != 0:  # the usual case: sounding to the end
        return len(samples)
    nonzero_from_end = samples[::-1] != 0
    last = int(nonzero_from_end.argmax())  # the first True; numpy's boolean argmax stops there
    return 0 if not nonzero_from_end[last] else len(samples) - last


def _relative_db(mel: torch.Tensor, power_scale: float) -> torch.Tensor:
    """Mel power (N, M, frames), in place -> dB relative to each row's maximum floored at -MSS_RANGE_DB, as
    `relative_log_mel` (a row with nothing above the absolute floor is -MSS_RANGE_DB everywhere)."""
    mel.mul_(power_scale).clamp_min_(10 ** (MSS_ABS_FLOOR_DB / 10)).log10_().mul_(10.0)
    return relative_db_(mel, MSS_RANGE_DB)
