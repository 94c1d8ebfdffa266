"""The errors synthinv reports to its user, and how they become one line.

`SynthinvError` is the base of every error caused by what the user gave (a file, an option value, a
dataset, a checkpoint) rather than by a bug: the `synthinv` command prints `error: <message>` on one line
and exits with status 2; anything else is a bug and keeps its traceback (exit 1). Library callers can
catch it the same way. Subclasses keep the built-in error callers caught before this base existed as a
second base (ValueError, FileExistsError, FileNotFoundError).

Messages describe the value or the path, never a command-line option: the library does not know how it
was called. The command adds its options' names where it checks them itself (synthinv.checks).
"""

from __future__ import annotations

import re


class SynthinvError(Exception):
    """Something the user gave cannot be used as asked; the message says what, on one line."""


class UsageError(SynthinvError, ValueError):
    """An option value outside what the command can do (--candidates 0, --guidance nan, ...)."""


class OutputExistsError(SynthinvError, FileExistsError):
    """An output path that is in the way: it exists and may not be replaced, or is a file where a folder goes."""


class InputNotFoundError(SynthinvError, FileNotFoundError):
    """An input path that does not exist, or is not the kind of thing asked for (a file for a folder)."""


class PresetError(SynthinvError, ValueError):
    """A preset file that is not what it claims to be, or parameters that do not fit the format."""


class DependencyError(SynthinvError, ImportError):
    """An optional dependency that the asked-for synth or feature needs is not installed."""


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
    message of one raised without an errno as it is."""
    if exc.errno is None or not exc.strerror:
        return str(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{exc.strerror}: {' -> '.join(names)}" if names else exc.strerror
