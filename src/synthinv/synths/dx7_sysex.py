"""DX7 sysex files for Dexed presets: a single voice (163 bytes) or a 32-voice bank (4104 bytes), the
DX7's own bulk-dump formats, loadable by Dexed, hardware DX7s and most librarians:

    single voice  F0 43 00 00 01 1B  <155 voice bytes (VCED)>  checksum  F7
    32-voice bank F0 43 00 09 20 00  <32 x 128 packed bytes (VMEM)>  checksum  F7

The checksum is the low 7 bits of minus the payload sum. Banks are read back with dexed-py's
`Patch.load_bank`; dexed-py has no single-voice file reader, so `read_syx_voice` is here.
`DexedSynth.write_preset` and `write_preset_bank` write these; `synthinv.presets` re-exports them.

    write_syx_voice("best.syx", params[0], synth.spec)            # one candidate
    write_syx_bank("candidates.syx", params[:8], synth.spec)      # up to 32, padded with INIT VOICE
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from synthinv.errors import PresetError
from synthinv.fileio import atomic_write
from synthinv.synths.base import ParamSpec
from synthinv.synths.dexed import DEFAULT_NAME, DexedSynth, init_vced

if TYPE_CHECKING:
    import dexed


VOICE_HEADER = bytes([0xF0, 0x43, 0x00, 0x00, 0x01, 0x1B])  # format 0 (one voice), 155 data bytes
BANK_HEADER = bytes([0xF0, 0x43, 0x00, 0x09, 0x20, 0x00])  # format 9 (32 voices), 4096 data bytes
VOICE_BYTES, BANK_VOICES, PACKED_BYTES = 155, 32, 128


def _checksum(payload: bytes) -> int:
    return (-sum(payload)) & 0x7F


def _dexed_synth(spec: ParamSpec | None) -> DexedSynth:
    if spec is None:
        return DexedSynth()
    if spec.synth not in ("dexed", "dexed_simple"):
        raise PresetError(f"DX7 sysex needs a Dexed parameter spec, got one for {spec.synth!r}")
    from synthinv.synths.dexed_simple import DexedSimpleSynth

    return (DexedSimpleSynth if spec.synth == "dexed_simple" else DexedSynth).from_settings(spec.settings)


def _names(names, n: int) -> list[str]:
    if names is None:
        return [f"{DEFAULT_NAME[:7]}{i:03d}" if n > 1 else DEFAULT_NAME for i in range(n)]
    if isinstance(names, str):
        return [names] * n
    names = list(names)
    if len(names) != n:
        raise PresetError(f"{n} voices but {len(names)} names")
    return names


def voice_sysex(params_row, spec: ParamSpec | None = None, name: str = DEFAULT_NAME) -> bytes:
    """One normalised row (size,) -> the bytes of a single-voice DX7 sysex message (163 bytes)."""
    vced = bytes(_dexed_synth(spec).to_vced(torch.as_tensor(params_row), name)[0][:VOICE_BYTES])
    return VOICE_HEADER + vced + bytes([_checksum(vced), 0xF7])


def write_syx_voice(path, params_row, spec: ParamSpec | None = None, name: str = DEFAULT_NAME) -> Path:
    """Write one normalised parameter row (size,) as a single-voice DX7 .syx file; returns the path.

    The MIDI note is not part of a voice and is dropped; the transposition comes from spec.settings
    (spec None: the default Dexed spec)."""
    row = torch.as_tensor(params_row)
    if row.dim() != 1:
        raise PresetError(f"write_syx_voice takes one parameter row, got shape {tuple(row.shape)}")
    return atomic_write(path, voice_sysex(row, spec, name))


def read_syx_voice(path) -> dexed.Patch:
    """Read a single-voice DX7 .syx file into a dexed.Patch (a clear PresetError for anything else)."""
    import dexed

    data = Path(path).read_bytes()
    if data[:6] == BANK_HEADER:
        raise PresetError(f"{path} is a 32-voice bank; read it with read_syx_bank")
    if len(data) < len(VOICE_HEADER) + VOICE_BYTES + 2 or data[:2] != VOICE_HEADER[:2] or data[3:6] != VOICE_HEADER[3:6]:
        raise PresetError(f"{path} is not a single-voice DX7 sysex file ({len(data)} bytes)")
    payload, checksum, end = data[6 : 6 + VOICE_BYTES], data[6 + VOICE_BYTES], data[7 + VOICE_BYTES]
    if end != 0xF7:
        raise PresetError(f"{path}: single-voice message is not terminated by F7 (truncated or corrupt)")
    if _checksum(payload) != checksum:
        raise PresetError(f"{path}: checksum mismatch (0x{checksum:02X} stored, 0x{_checksum(payload):02X} computed)")
    return dexed.Patch.from_sysex(payload + b"\x3f")


def write_syx_bank(path, rows, spec: ParamSpec | None = None, names=None) -> Path:
    """Write up to 32 normalised rows (n, size) as a 32-voice DX7 bank, padded with INIT VOICEs."""
    import dexed

    rows = rows if isinstance(rows, torch.Tensor) else torch.as_tensor(np.asarray(rows))
    if rows.dim() == 1:
        rows = rows[None]
    if len(rows) > BANK_VOICES:
        raise PresetError(f"a DX7 bank holds {BANK_VOICES} voices, got {len(rows)}; split them over several banks")
    synth = _dexed_synth(spec)
    voices = [synth.to_vced(row, name)[0] for row, name in zip(rows, _names(names, len(rows)))]
    voices += [init_vced()] * (BANK_VOICES - len(voices))
    payload = b"".join(dexed.Patch.from_sysex(bytes(v)).to_packed() for v in voices)
    assert len(payload) == BANK_VOICES * PACKED_BYTES
    return atomic_write(path, BANK_HEADER + payload + bytes([_checksum(payload), 0xF7]))


def read_syx_bank(path) -> list:
    """Read a 32-voice DX7 bank into 32 dexed.Patch objects (dexed-py's reader)."""
    import dexed

    try:
        return dexed.Patch.load_bank(str(path))
    except ValueError as exc:
        raise PresetError(str(exc)) from None
