"""File helpers: atomic writes (a file is either complete or absent, never half-written), YAML reads."""

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


def read_yaml(path: Path, error: type[Exception]):
    """The YAML document at `path`, or `error` with one line saying what is wrong (missing, not YAML)."""
    import yaml

    if not path.is_file():
        raise error(f"file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from None
