"""Atomic file writes: a file is either complete or absent, never half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write to a temporary sibling (named per process, so concurrent writers never share it), then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | Path, data, indent: int = 2) -> Path:
    return atomic_write(path, json.dumps(data, indent=indent))
