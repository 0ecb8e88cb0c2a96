"""Small helpers shared by the hf_rnn modules: atomic folder writes, one-line error messages, packaged data folders.

`modeling_rnn.py` and `configuration_rnn.py` must not import this module: they are uploaded alone as Hub remote code.

Example:

```python
>>> from hf_rnn.utils import atomic_directory
>>> with atomic_directory("cache/vocab") as folder:
...     _ = (folder / "vocab.txt").write_text("hello\nworld\n")
```
"""

import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

__all__ = ["atomic_directory", "one_line", "package_data_dir"]


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """
    Writes a folder atomically: readers see either no `target` or the complete one, never a half-written one.

    Yields a new, empty temporary folder next to `target` (so on the same file system) to write into; when the block
    ends without an exception, the temporary folder is renamed to `target`. If another writer (a DDP rank, a parallel
    run) put `target` in place first, the rename fails and their folder is kept, ours dropped: both hold the same
    content. On any exception, `KeyboardInterrupt` included, the temporary folder is removed and `target` is left
    untouched.

    A process killed outright (`kill -9`, out of memory) cannot clean up, so entering also removes the temporary
    folders of the same `target` whose writer, a process of this machine, is no longer running. Temporary folders
    are named `.<target name>.tmp-<host>-<pid>-<random>`; those of a running process, or of another machine sharing
    the file system, are never touched.

    Args:
        target (`str` or `Path`):
            The folder to create. Its parent folders are created if missing.

    Yields:
        `Path`: the temporary folder to write into.

    Raises:
        `OSError`: the rename failed and `target` does not exist (e.g. no permission).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    temporary = target.with_name(f"{_temporary_prefix(target)}{_host()}-{os.getpid()}-{secrets.token_hex(4)}")
    temporary.mkdir()
    try:
        yield temporary
        try:
            os.replace(temporary, target)
        except OSError:
            # another writer finished first: theirs is complete, so keep it and drop ours
            if not target.exists():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _host() -> str:
    """This machine's name as it appears in temporary folder names (letters, digits, `.`, `_` and `-` only)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:64] or "localhost"


def _remove_stale_temporaries(target: Path) -> None:
    """Removes the temporary folders of `target` left by processes of this machine that are no longer running."""
    prefix = _temporary_prefix(target)
    host = _host()
    for entry in target.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        # `<host>-<pid>-<random>`: host names may hold dashes, the pid and the random part never do
        parts = entry.name[len(prefix) :].rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        if not psutil.pid_exists(int(parts[1])):
            shutil.rmtree(entry, ignore_errors=True)


def one_line(error: BaseException, first_only: bool = False) -> str:
    """
    An exception's message on one line, for error messages that must stay one line (the CLI's `hf-rnn: error: ...`).

    Args:
        error (`BaseException`):
            The exception.
        first_only (`bool`, *optional*, defaults to `False`):
            Keep only the first non-empty line (for third-party errors whose later lines are long details) instead
            of joining all of them with spaces.

    Returns:
        `str`: the message's non-empty lines, stripped, or the exception's type name when the message is empty.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[0] if first_only else " ".join(lines)


def package_data_dir(name: str) -> Path:
    """
    A data folder shipped with hf_rnn (`configs`, `model_cards`): inside the installed wheel, or at the repository
    root in a source checkout.

    Args:
        name (`str`):
            The folder's name.

    Returns:
        `Path`: the folder (not checked to exist when neither place has it).
    """
    inside = Path(__file__).parent / name
    return inside if inside.is_dir() else Path(__file__).parent.parent / name
