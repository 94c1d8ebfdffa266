"""File helpers: atomic writes (a file is either complete or absent, never half-written), YAML reads."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write to a temporary sibling (named per process, so concurrent writers never share it), then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or a kill leaves no partial file behind
        raise
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


@contextlib.contextmanager
def building_folder(out: str | Path):
    """`with building_folder(out) as tmp:` write into `tmp`, a hidden sibling of `out`; when the block ends
    normally, `tmp` replaces `out` (an existing `out` is removed only then, so a failed --force run keeps
    the old results); when it raises, `tmp` and the parent folders made for it are removed: a refused or
    failed run leaves nothing behind."""
    out = Path(out)
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # deepest first
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.is_symlink() or out.is_file():
            out.unlink()
        elif out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:
            with contextlib.suppress(OSError):  # only if still empty
                folder.rmdir()
        raise
