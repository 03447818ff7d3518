"""Atomic file writes: a crash or Ctrl-C never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mixtask.errors import MixtaskError, UsageError


def _read_umask() -> int:
    mask = os.umask(0)  # reading it means setting it: done once, at import, before any thread starts
    os.umask(mask)
    return mask


UMASK = _read_umask()


class OutputExists(MixtaskError):
    """`path` appeared while we wrote it (another run): with replace=False it is kept, ours dropped."""


@contextlib.contextmanager
def atomic_path(path: Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    replace=False never replaces an existing `path`, not even one another process wrote a moment ago:
    the file is hard-linked into place (which fails if the name exists), then the temporary name removed."""
    path = Path(path)
    try:  # the folder and the temporary file fail like the write itself: read-only, permissions, a file as folder
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(path)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from None
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        if replace:
            os.replace(temp, path)
        else:
            _link_exclusively(temp, path)
    except FileExistsError:
        temp.unlink(missing_ok=True)
        raise OutputExists(f"output {path} exists (another run wrote it meanwhile); it was kept") from None
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise _write_error(path, error) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def cache_dir() -> Path:
    """Where mixtask keeps what it can compute again: `$MIXTASK_CACHE`, else $XDG_CACHE_HOME/mixtask or
    ~/.cache/mixtask."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mixtask"
    return Path(os.environ.get("MIXTASK_CACHE") or default)


def check_output(path: Path, inputs: tuple[Path, ...], overwrite: bool) -> None:
    """The rules of `apply` for one output: never an input (a usage error), an existing file is kept (exit 1)
    unless `overwrite`. Checked before any work; the write itself then uses `atomic_path(path, overwrite)`."""
    if any(Path(path).resolve() == Path(source).resolve() for source in inputs):
        raise UsageError(f"output {path} would overwrite an input; write it elsewhere")
    if Path(path).exists() and not overwrite:
        raise MixtaskError(f"output {path} exists; it was kept (--overwrite replaces it)")


def remove_stale_parts(path: Path) -> list[Path]:
    """Remove the temporary files a killed writer of `path` left (`.NAME.PID.xxxx.part` whose process is gone);
    a live writer's file is kept. Returns what was removed."""
    removed = []
    prefix = f".{path.name}."
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*.part"):
        pid = candidate.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def _link_exclusively(temp: Path, path: Path) -> None:
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: the check and the rename are then two steps
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(temp, path)
        return
    temp.unlink()


def _write_error(path: Path, error: OSError) -> MixtaskError:
    if error.errno == errno.ENOSPC:
        return MixtaskError(f"disk full while writing {path}; nothing was written")
    return MixtaskError(f"cannot write {path}: {error.strerror or error}")


def write_bytes_atomic(path: Path, data: bytes, replace: bool = True) -> None:
    with atomic_path(path, replace) as temp:
        temp.write_bytes(data)
