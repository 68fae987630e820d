"""Writing an output directory whole or not at all, and cleaning up after killed runs.

A run's output (the ``transport run`` and ``transport simulate`` directories) is written
into a hidden sibling, ``.<name>.partial-<host>-<pid>-<random>``, that replaces the
directory only once everything is written (:func:`staged_directory`). A release is
written in place (its directory may be an outbox the user cannot write beside): every
file goes first to a hidden ``.<file>.partial-<host>-<pid>-<random>`` beside it and is
renamed over its final name only when all of them, the manifest last, were written
(:func:`write_in_place`). A full disk or an error midway leaves the directory as it was.

A process killed outright (``SIGKILL``, a lost node) cannot clean up: its hidden pieces
carry its host and process id, and the next writer of the same directory removes those
whose process is no longer running on this host (:func:`sweep`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from transport.exceptions import DataError

__all__ = [
    "check_writable",
    "directory_path",
    "is_partial",
    "os_errors_named",
    "staged_directory",
    "sweep",
    "write_file",
    "write_in_place",
]

_MARK = ".partial-"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def directory_path(value: Any, name: str, where: str) -> Path:
    """The directory a parameter ``name`` of ``where`` names: a ``str`` or path-like,
    neither empty (which would be the working directory) nor holding a NUL byte;
    anything else is a ``DataError`` naming the parameter."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str) or not text.strip() or "\0" in text:
        raise DataError(
            f"The {name!r} parameter of {where} must be the path of a directory (text or a "
            f"pathlib.Path, not empty, no NUL byte). Got {value!r:.80}."
        )
    return Path(text)


@contextmanager
def os_errors_named(path: Path, what: str) -> Iterator[None]:
    """Run the block; an error the operating system reports (no such directory, no
    permission, a full disk, a read-only or virtual file system) is a ``DataError``
    naming ``what`` (``"release directory"``) and ``path``, with the system's reason.
    The package's own ``OSError`` refusals (which carry no ``errno``) pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None:
            raise
        reason = exc.strerror or type(exc).__name__
        raise DataError(f"{what} {str(path)!r} cannot be written ({reason})") from None


def _partial_name(name: str) -> str:
    return f".{name}{_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def _owner(entry: str, name: str | None) -> tuple[str, int] | None:
    """The host and process id a hidden piece of ``name`` (any name: ``None``) was
    written by, else ``None``."""
    stem = ".+" if name is None else re.escape(name)
    m = re.fullmatch(rf"\.{stem}{_MARK}([A-Za-z0-9_]+)-(\d+)-[0-9a-f]+", entry)
    return (m.group(1), int(m.group(2))) if m else None


def is_partial(entry: str) -> bool:
    """Whether ``entry`` (a file or directory name) is a hidden piece of an unfinished
    write."""
    return entry.startswith(".") and _MARK in entry


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True


def sweep(parent: Path, name: str | None = None) -> list[Path]:
    """Remove the hidden pieces of ``name`` (default: of any name) in ``parent`` left by
    processes of this host that no longer run; return what was removed. Pieces of a
    running process, or of another host (a shared file system), are left alone."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        owner = _owner(entry.name, name)
        if owner is None or owner[0] != _HOST or _running(owner[1]):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def check_writable(directory: Path, what: str) -> None:
    """Refuse, before any work, a ``directory`` that could not be written: its nearest
    existing ancestor must be a directory in which a hidden piece can be made (not
    read-only, virtual or a file). Nothing is left behind, no parent created."""
    parent = Path(os.path.abspath(directory)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{what} {str(directory)!r} cannot be written ({str(parent)!r} is a file)")
    probe = parent / _partial_name(directory.name or "output")
    with os_errors_named(directory, what):
        probe.mkdir()
        probe.rmdir()


@contextmanager
def staged_directory(directory: Path) -> Iterator[Path]:
    """A hidden sibling of ``directory`` to write into. When the block finishes, the
    sibling takes ``directory``'s place (the old one is moved aside first and removed
    after, so the name is never left holding half of either); when the block raises,
    the sibling is removed and ``directory`` is left as it was. The caller checks that
    ``directory`` may be replaced, inside the block."""
    parent = directory.parent
    tmp = parent / _partial_name(directory.name)
    with os_errors_named(directory, "output directory"):
        parent.mkdir(parents=True, exist_ok=True)
        sweep(parent, directory.name)
        tmp.mkdir()
    try:
        yield tmp
        old = parent / _partial_name(directory.name)
        if directory.exists():
            directory.rename(old)
        try:
            tmp.rename(directory)
        except BaseException:
            if old.exists():
                old.rename(directory)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_in_place(
    directory: Path, files: Mapping[str, bytes], last: str, stale: Iterable[str]
) -> None:
    """Write ``files`` (name: bytes) into ``directory``, the file named ``last`` (the
    manifest) after the others, each first to a hidden piece renamed over its name only
    once all were written; then remove the ``stale`` names (an earlier release's files
    that this one does not have). On any error the pieces are removed and the directory
    holds what it held before."""
    sweep(directory)
    pieces: dict[str, Path] = {}
    try:
        for name in sorted(files, key=lambda n: n == last):
            piece = directory / _partial_name(name)
            pieces[name] = piece
            with open(piece, "wb") as fh:
                fh.write(files[name])
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        for piece in pieces.values():
            with suppress(FileNotFoundError):
                piece.unlink()
        raise
    for name in sorted(files, key=lambda n: n == last):
        os.replace(pieces[name], directory / name)
    for name in stale:
        if name not in files:
            with suppress(FileNotFoundError):
                (directory / name).unlink()


def write_file(path: Any, data: bytes, what: str) -> Path:
    """Write ``data`` to the file ``path``, as ``open(path, "wb")`` does: through a
    symbolic link, into a device or an existing file (its permissions kept). A ``path``
    that is a directory, or that the system refuses (no such parent, no permission, a full
    disk), is a ``DataError`` naming ``what`` (``"summary file"``) and the path; a file
    this call created is removed again when the writing fails midway."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {str(path)!r} is a directory (rule: name a file to write)")
    existed = path.exists() or path.is_symlink()
    try:
        with os_errors_named(path, what), open(path, "wb") as fh:
            fh.write(data)
    except BaseException:
        if not existed:
            with suppress(OSError):
                path.unlink()
        raise
    return path
