"""The errors synthinv reports to its user, and how they become one line.

`SynthinvError` is the base of every error caused by what the user gave (a file, an option value, a
dataset, a checkpoint) rather than by a bug: the `synthinv` command prints `error: <message>` on one line
and exits with status 2. Library callers can catch it the same way. Most subclasses keep ValueError as a
second base because callers caught ValueError before this base existed.
"""

from __future__ import annotations

import re


class SynthinvError(Exception):
    """Something the user gave cannot be used as asked; the message says what, on one line."""


class UsageError(SynthinvError, ValueError):
    """An option value outside what the command can do (--candidates 0, --guidance nan, ...)."""


# Our writers put partial output beside its destination under these names (fileio.atomic_write,
# shards.write_shard: ".NAME.PID.tmp"; invert and train: ".NAME.partial-PID") and rename it when complete.
# The user never typed these names, so a message naming one names the destination instead.
_TEMP_NAME = re.compile(r"(?<![^/\\\s'\"(])\.([^/\\\s'\"]+?)\.(?:partial-\d+|\d+\.tmp)(?=$|[/\\\s'\",:)])")


def user_paths(text: str) -> str:
    """`text` with every temporary sibling name replaced by the name of the file or folder it becomes."""
    return _TEMP_NAME.sub(r"\1", text)


def one_line(text: str) -> str:
    """A message on one line (third-party messages sometimes span several), temporary names mapped back."""
    return " ".join(user_paths(str(text)).split())


def os_error_message(exc: OSError) -> str:
    """'Permission denied: /where/it/was' for an OSError raised by the system (which has an errno); the
    message of one we raised ourselves (FileExistsError("... pass --force ...")) as it is."""
    if exc.errno is None or not exc.strerror:
        return str(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{exc.strerror}: {' -> '.join(names)}" if names else exc.strerror
