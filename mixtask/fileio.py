"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mixtask.errors import MixtaskError


def _read_umask() -> int:
    mask = os.umask(0)  # reading it means setting it: done once, at import, before any thread starts
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    try:  # the folder and the temporary file fail like the write itself: read-only, permissions, a file as folder
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from None
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise _write_error(path, error) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _write_error(path: Path, error: OSError) -> MixtaskError:
    if error.errno == errno.ENOSPC:
        return MixtaskError(f"disk full while writing {path}; nothing was written")
    return MixtaskError(f"cannot write {path}: {error.strerror or error}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)
